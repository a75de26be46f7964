// Tokenizing arbitrary text with real tokenizers (src/tokenizer): encode with and without special
// tokens, decode, streaming decode, and ChatML rendering of arbitrary messages. Byte-level BPE
// must give back every byte: decode_bytes(encode(text)) == text whenever normalisation cannot
// change the text (no NFC, or ASCII text) and the vocabulary has every byte of it (SmolLM2's lacks
// a few control bytes, which are dropped, as HF drops them). The first byte of the input chooses the tokenizer and
// whether special tokens are parsed; the rest is the text, which is also cut at NUL bytes into
// chat messages whose first byte chooses the role.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "tokenizer/chat.h"
#include "tokenizer/utf8.h"

using namespace arwkv;

namespace {

// Bytes that have a token of their own (the byte-level alphabet in the vocabulary).
std::array<bool, 256> byte_tokens(const Tokenizer& tok) {
  std::array<bool, 256> has{};
  for (int b = 0; b < 256; ++b) has[b] = tok.token_id(utf8::to_byte_level(std::string(1, static_cast<char>(b)))) >= 0;
  return has;
}

bool all_bytes_have_tokens(const Tokenizer& tok, std::string_view text) {
  static const std::array<bool, 256> smollm2 = byte_tokens(fuzz::smollm2_tokenizer()),
                                     qwen2 = byte_tokens(fuzz::qwen2_tokenizer());
  const std::array<bool, 256>& has = &tok == &fuzz::smollm2_tokenizer() ? smollm2 : qwen2;
  for (char c : text)
    if (!has[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

void chat(const Tokenizer& tok, std::string_view text) {
  static const char* const roles[] = {"system", "user", "assistant", "tool"};
  std::vector<ChatMessage> messages;
  for (std::string_view part : fuzz::split_parts(text, std::string_view("\0", 1), 16)) {
    const size_t role = part.empty() ? 0 : static_cast<unsigned char>(part[0]) % 4;
    messages.push_back({roles[role], std::string(part.substr(part.empty() ? 0 : 1))});
  }
  const std::string rendered = apply_chat_template(tok.data(), messages, true);
  tok.decode(tok.encode(rendered, true));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::smollm2_tokenizer();
  fuzz::qwen2_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  const Tokenizer& tok = mode & 1 ? fuzz::qwen2_tokenizer() : fuzz::smollm2_tokenizer();
  const bool special = mode & 2;
  const std::vector<int32_t> ids = tok.encode(text, special);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  if ((!tok.data().nfc || is_ascii(text)) && all_bytes_have_tokens(tok, text) && tok.decode_bytes(ids) != text) {
    std::string shown;
    for (int32_t id : ids) shown += fmt::format("{}:{} ", id, nlohmann::json(tok.token_text(id)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::fprintf(stderr, "decode_bytes(encode(text)) != text; ids: %s\n", shown.c_str());
    std::abort();
  }
  tok.decode(ids);
  IncrementalDecoder stream(tok);
  for (int32_t id : ids) stream.push(id);
  stream.flush();
  if (mode & 4) fuzz::accepts([&] { chat(tok, text); });
  return 0;
}
