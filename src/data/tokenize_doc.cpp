// Tokenizing documents, with assistant masks for chats (see tokenize_doc.h).
#include "data/tokenize_doc.h"

#include <utf8proc.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "formats/checkpoint.h"

namespace arwkv {

namespace {

// NFC of valid UTF-8, as the tokenizer applies it, so that the rendered text is what gets encoded.
std::string nfc(const std::string& text) {
  utf8proc_uint8_t* dst = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &dst,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return text;
  std::string out(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

}  // namespace

TokenizedDocument tokenize_text(const Tokenizer& tokenizer, const std::string& text) {
  return {tokenizer.encode_start(text, false), {}};
}

RenderedChat render_chat(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                         const std::string& source) {
  std::vector<ChatMessage> msgs = messages;
  if (data.nfc)
    for (ChatMessage& m : msgs) m.content = nfc(m.content);
  RenderedChat r;
  r.text = apply_chat_template(data, msgs, false);
  const ChatFormat& format = chat_format(data);
  const std::string header = assistant_header(format), close = format.turn_end;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i));
    const size_t at = apply_chat_template(data, before, false).size();
    const std::string content = chat_content(format, msgs[i].content);
    const size_t begin = at + header.size(), end = begin + content.size() + close.size();
    if (r.text.compare(at, header.size(), header) != 0 || r.text.compare(begin, content.size(), content) != 0 ||
        r.text.compare(end - close.size(), close.size(), close) != 0)
      fail("{}: the chat template of {} does not render assistant turn {} as {}", source, data.source, i,
           format.name);
    r.assistant_spans.emplace_back(begin, end);
  }
  return r;
}

TokenizedDocument tokenize_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const std::string& source) {
  const RenderedChat chat = render_chat(tokenizer.data(), messages, source);
  TokenizedDocument doc{tokenizer.encode(chat.text, true), {}};
  doc.mask.assign(doc.ids.size(), 0);
  size_t pos = 0, span = 0;
  for (size_t t = 0; t < doc.ids.size(); ++t) {
    const size_t begin = pos, end = pos + tokenizer.token_text(doc.ids[t]).size();
    while (span < chat.assistant_spans.size() && chat.assistant_spans[span].second <= begin) ++span;
    if (span < chat.assistant_spans.size() && chat.assistant_spans[span].first < end) doc.mask[t] = 1;
    pos = end;
  }
  if (pos != chat.text.size())
    fail("{}: the tokens of the rendered chat are {} bytes long, the text {}: the assistant mask cannot be aligned",
         source, pos, chat.text.size());
  return doc;
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.ends_with(".json")) return std::make_unique<Tokenizer>(load_tokenizer_json(path));
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "tokenizer.json"))
    return std::make_unique<Tokenizer>(load_tokenizer_json((fs::path(path) / "tokenizer.json").string()));
  return load_tokenizer(*Checkpoint::open(path));
}

}  // namespace arwkv
