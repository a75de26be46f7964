// Tokenizer encode/decode (see tokenizer.h).
#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "tokenizer/utf8.h"

namespace arwkv {

namespace {

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// NFC of valid UTF-8; text that utf8proc refuses (invalid UTF-8) is left as it is.
std::string nfc(std::string_view text) {
  utf8proc_uint8_t* dst = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &dst,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(text);
  std::string out(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

// A SentencePiece token's bytes: "▁" is a space, a byte token <0xXX> its byte.
std::string spm_token_bytes(const std::string& token, TokenType type) {
  if (type == TokenType::Byte) {
    const int b = byte_token_value(token);
    if (b >= 0) return std::string(1, static_cast<char>(b));
  }
  std::string out;
  for (size_t i = 0; i < token.size();) {
    if (std::string_view(token).substr(i, kSpmSpace.size()) == kSpmSpace) {
      out += ' ';
      i += kSpmSpace.size();
    } else {
      out += token[i++];
    }
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)), pre_(data_.pre_regexes, data_.source) {
  ARWKV_ASSERT(data_.token_types.size() == data_.tokens.size(), "token types and tokens differ in length");
  const bool spm = data_.kind == TokenizerKind::SentencePiece;
  if (spm)
    spm_.emplace(data_);
  else
    bpe_.emplace(data_);
  const auto n = data_.tokens.size();
  token_bytes_.resize(n);
  ids_.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (spm)
      token_bytes_[id] = spm_token_bytes(data_.tokens[id], data_.token_types[id]);
    else if (!utf8::from_byte_level(data_.tokens[id], token_bytes_[id]))
      token_bytes_[id] = data_.tokens[id];
    ids_.emplace(data_.tokens[id], static_cast<int32_t>(id));
  }
  added_lengths_.resize(256);
  for (size_t i = 0; i < data_.added_tokens.size(); ++i) {
    const AddedToken& t = data_.added_tokens[i];
    if (t.id < 0 || static_cast<size_t>(t.id) >= n)
      fail("{}: added token '{}' has id {} outside the vocabulary of {}", data_.source, t.content, t.id, n);
    if (t.content.empty()) continue;
    token_bytes_[t.id] = t.content;
    ids_[t.content] = t.id;
    if (spm && Spm::matches_user_token(t)) continue;  // matched by the SentencePiece encoder
    added_by_content_[t.content].push_back(i);
    auto& lengths = added_lengths_[static_cast<uint8_t>(t.content[0])];
    if (std::find(lengths.begin(), lengths.end(), t.content.size()) == lengths.end()) lengths.push_back(t.content.size());
  }
  for (auto& lengths : added_lengths_) std::sort(lengths.rbegin(), lengths.rend());
  stop_.assign(n, false);
  for (int32_t id : data_.stop_ids)
    if (id >= 0 && static_cast<size_t>(id) < n) stop_[id] = true;
}

bool Tokenizer::find_added(std::string_view text, size_t pos, bool parse_special, size_t& begin, size_t& end,
                           int32_t& id) const {
  for (size_t i = pos; i < text.size(); ++i) {
    for (size_t len : added_lengths_[static_cast<uint8_t>(text[i])]) {
      if (len > text.size() - i) continue;
      auto it = added_by_content_.find(text.substr(i, len));
      if (it == added_by_content_.end()) continue;
      size_t k = 0;
      while (k < it->second.size() && data_.added_tokens[it->second[k]].special && !parse_special) ++k;
      if (k == it->second.size()) continue;
      const AddedToken& t = data_.added_tokens[it->second[k]];
      begin = i;
      end = i + t.content.size();
      if (t.lstrip)
        while (begin > pos && is_space(text[begin - 1])) --begin;
      if (t.rstrip)
        while (end < text.size() && is_space(text[end])) ++end;
      id = t.id;
      return true;
    }
  }
  return false;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  size_t pos = 0, begin = 0, end = 0;
  int32_t id = -1;
  while (pos < text.size() && find_added(text, pos, parse_special, begin, end, id)) {
    encode_text(text.substr(pos, begin - pos), pos == 0, out);
    out.push_back(id);
    pos = end;
  }
  encode_text(text.substr(pos), pos == 0, out);
  return out;
}

std::vector<int32_t> Tokenizer::encode_start(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids = encode(text, parse_special);
  if (add_bos()) ids.insert(ids.begin(), data_.bos_id);
  return ids;
}

void Tokenizer::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (spm_) {
    spm_->encode(text, at_start && data_.add_space_prefix, out);
    return;
  }
  std::string normalized;
  if (data_.nfc && !is_ascii(text)) {
    normalized = nfc(text);
    text = normalized;
  }
  std::vector<std::string_view> pieces;
  pre_.split(text, pieces);
  for (auto piece : pieces) bpe_->encode_word(piece, out);
}

std::string Tokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_text(id);
  return out;
}

// SentencePiece decodes as HF's ByteFallback decoder does: a run of byte tokens that is not valid
// UTF-8 becomes one U+FFFD per token; HF strips the space prefix it put in front.
std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  if (!spm_) return utf8::repair(decode_bytes(ids));
  std::string out, run;
  size_t run_tokens = 0;
  auto flush = [&] {
    if (utf8::is_valid(run))
      out += run;
    else
      for (size_t i = 0; i < run_tokens; ++i) out += "\xEF\xBF\xBD";
    run.clear();
    run_tokens = 0;
  };
  for (int32_t id : ids) {
    const std::string& bytes = token_text(id);  // checks the id
    if (data_.token_types[id] == TokenType::Byte) {
      run += bytes;
      ++run_tokens;
      continue;
    }
    flush();
    out += bytes;
  }
  flush();
  if (data_.add_space_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return utf8::repair(out);
}

const std::string& Tokenizer::token_text(int32_t id) const {
  ARWKV_ASSERT(id >= 0 && id < vocab_size(), "token id {} outside the vocabulary of {}", id, vocab_size());
  return token_bytes_[id];
}

int32_t Tokenizer::token_id(std::string_view text) const {
  auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

bool Tokenizer::is_stop(int32_t id) const { return id >= 0 && id < vocab_size() && stop_[id]; }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && data_.token_types[id] == TokenType::Control;
}

std::string IncrementalDecoder::push(int32_t id) {
  pending_ += tok_.token_text(id);
  const size_t n = utf8::complete_prefix(pending_);
  std::string out = utf8::repair(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string IncrementalDecoder::flush() {
  std::string out = utf8::repair(pending_);
  pending_.clear();
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const Checkpoint& checkpoint) {
  if (const GgufFile* gguf = checkpoint.gguf()) return std::make_unique<Tokenizer>(tokenizer_data_from_gguf(*gguf));
  const std::string json = checkpoint.tokenizer_json_path();
  if (json.empty()) fail("{}: no tokenizer (neither GGUF tokenizer metadata nor tokenizer.json)", checkpoint.path());
  return std::make_unique<Tokenizer>(load_tokenizer_json(json));
}

}  // namespace arwkv
