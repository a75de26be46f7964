// ChatML rendering (see chat.h). Tool results follow Qwen2.5's template when the template knows
// <tool_response>: consecutive tool messages share one user turn, each wrapped in the tags.
#include "tokenizer/chat.h"

#include "core/error.h"

namespace arwkv {

namespace {

// Undoes Jinja string-literal escapes (\n, \t, \', \", \\).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char n = s[++i];
    out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
  }
  return out;
}

std::string turn(const std::string& role, const std::string& content) {
  return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
}

}  // namespace

std::string default_system_prompt(const std::string& tpl) {
  const std::string start = "<|im_start|>system", end = "<|im_end|>";
  for (size_t at = tpl.find(start); at != std::string::npos; at = tpl.find(start, at + 1)) {
    size_t body = at + start.size();
    if (tpl.compare(body, 2, "\\n") == 0)
      body += 2;
    else if (tpl.compare(body, 1, "\n") == 0)
      body += 1;
    else
      continue;
    const size_t stop = tpl.find(end, body);
    if (stop == std::string::npos) continue;
    const std::string literal = tpl.substr(body, stop - body);
    // A literal of the template, not an expression such as ' + messages[0]['content'] + '.
    if (literal.find_first_of("'\"{}+") == std::string::npos) return unescape(literal);
  }
  return {};
}

std::string apply_chat_template(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  const std::string& tpl = data.chat_template;
  if (tpl.empty()) fail("{}: the model has no chat template", data.source);
  if (tpl.find("<|im_start|>") == std::string::npos || tpl.find("<|im_end|>") == std::string::npos)
    fail("{}: the chat template is not ChatML (no <|im_start|>/<|im_end|>); only ChatML templates are supported",
         data.source);
  const bool qwen_tools = tpl.find("<tool_response>") != std::string::npos;

  std::string out;
  if (messages.empty() || messages[0].role != "system") {
    const std::string system = default_system_prompt(tpl);
    if (!system.empty()) out += turn("system", system);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role != "tool" || !qwen_tools) {
      out += turn(m.role, m.content);
      continue;
    }
    if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
    out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
    if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace arwkv
