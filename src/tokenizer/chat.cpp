// Chat rendering (see chat.h). Tool results follow Qwen2.5's template when the template knows
// <tool_response>: consecutive tool messages share one user turn, each wrapped in the tags.
#include "tokenizer/chat.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace arwkv {

namespace {

const ChatFormat kFormats[] = {
    {"ChatML", {"<|im_start|>", "<|im_end|>"}, "", "<|im_start|>", "<|im_end|>", "\n", "assistant",
     /*system_in_first_turn=*/false, /*trim_content=*/false, /*roles_alternate=*/false,
     /*default_system_prompt=*/true, /*tool_responses=*/true},
    // Gemma's template starts with {{ bos_token }}, <bos> in every Gemma vocabulary.
    {"Gemma", {"<start_of_turn>", "<end_of_turn>"}, "<bos>", "<start_of_turn>", "<end_of_turn>", "\n", "model",
     /*system_in_first_turn=*/true, /*trim_content=*/true, /*roles_alternate=*/true,
     /*default_system_prompt=*/false, /*tool_responses=*/false},
};

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

// Python's str.isspace() (what Jinja's trim strips): Unicode White_Space plus U+001C..U+001F.
bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// The code point of the valid character at s[i, i + len), or -1.
int64_t code_point(std::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i + k])); };
  if (len == 1) return b(0);
  if (len == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (len == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

std::string trim(const std::string& s) {
  size_t begin = s.size(), end = 0;  // the first and past the last non-space character
  for (size_t i = 0; i < s.size();) {
    const utf8::Step st = utf8::step(s, i);
    if (!st.valid || !is_python_space(static_cast<uint32_t>(code_point(s, i, st.len)))) {
      begin = std::min(begin, i);
      end = i + st.len;
    }
    i += st.len;
  }
  return begin >= end ? std::string() : s.substr(begin, end - begin);
}

std::string turn(const ChatFormat& f, const std::string& role, const std::string& content) {
  return f.turn_start + role + "\n" + content + f.turn_end + f.after_turn;
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

const ChatFormat& chat_format(const TokenizerData& data) {
  const std::string& tpl = data.chat_template;
  if (tpl.empty()) fail("{}: the model has no chat template", data.source);
  for (const ChatFormat& f : kFormats) {
    bool all = true;
    for (const char* m : f.markers) all &= tpl.find(m) != std::string::npos;
    if (all) return f;
  }
  fail("{}: the chat template is neither ChatML (<|im_start|>, <|im_end|>) nor Gemma's (<start_of_turn>, "
       "<end_of_turn>); no other template is supported",
       data.source);
}

std::string assistant_header(const ChatFormat& f) { return std::string(f.turn_start) + f.assistant_role + "\n"; }

std::string chat_content(const ChatFormat& f, const std::string& content) {
  return f.trim_content ? trim(content) : content;
}

std::string apply_chat_template(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  const ChatFormat& f = chat_format(data);
  const bool tools = f.tool_responses && data.chat_template.find("<tool_response>") != std::string::npos;

  std::string out = f.begin, first_prefix;
  size_t first = 0;
  if (f.system_in_first_turn && !messages.empty() && messages[0].role == "system") {
    first_prefix = messages[0].content + "\n\n";  // not trimmed: the template adds it to the turn's header
    first = 1;
  }
  if (f.default_system_prompt && (messages.empty() || messages[0].role != "system")) {
    const std::string system = default_system_prompt(data.chat_template);
    if (!system.empty()) out += turn(f, "system", system);
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (f.roles_alternate && (m.role == "user") != ((i - first) % 2 == 0))
      fail("{}: the chat template refuses message {} ('{}'): roles must alternate user/assistant/user/...",
           data.source, i, m.role);
    if (m.role == "tool" && tools) {
      if (i == 0 || messages[i - 1].role != "tool") out += std::string(f.turn_start) + "user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += std::string(f.turn_end) + f.after_turn;
      continue;
    }
    const std::string role = m.role == "assistant" ? f.assistant_role : m.role;
    out += turn(f, role, (i == first ? first_prefix : std::string()) + chat_content(f, m.content));
  }
  if (add_generation_prompt) out += assistant_header(f);
  return out;
}

}  // namespace arwkv
