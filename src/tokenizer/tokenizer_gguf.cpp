// Tokenizer from GGUF metadata (FORMATS.md §4.5): tokenizer.ggml.model "gpt2" (byte-level BPE) or
// "llama" (SentencePiece BPE), .pre (pre-tokenizer name; gpt2 only), .tokens, .token_type (INT32,
// 1 normal … 6 byte), .merges ("left right" in rank order; gpt2), .scores (FLOAT32 per token;
// llama), .bos/eos/padding/unknown/eot/eom_token_id, .add_bos_token/.add_eos_token and
// .add_space_prefix (BOOL), and tokenizer.chat_template. CONTROL tokens become special added
// tokens, USER_DEFINED ones non-special added tokens. llama.cpp's converter writes SentencePiece
// user-defined whitespace runs with plain spaces (not U+2581), so they are matched in raw text.
#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv {

namespace {

int32_t optional_id(const GgufFile& f, const std::string& key, size_t n_tokens) {
  const int64_t id = f.get_int_or(key, -1);
  return id >= 0 && static_cast<size_t>(id) < n_tokens ? static_cast<int32_t>(id) : -1;
}

std::vector<std::pair<std::string, std::string>> read_merges(const GgufFile& f) {
  std::vector<std::pair<std::string, std::string>> merges;
  if (!f.has("tokenizer.ggml.merges")) return merges;
  const auto& list = f.string_array("tokenizer.ggml.merges");
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const size_t space = list[i].size() > 1 ? list[i].find(' ', 1) : std::string::npos;
    if (space == std::string::npos) fail("{}: tokenizer.ggml.merges[{}] '{}' has no space", f.path(), i, list[i]);
    merges.emplace_back(list[i].substr(0, space), list[i].substr(space + 1));
  }
  return merges;
}

void read_byte_level_pre(const GgufFile& f, TokenizerData& d) {
  d.pre_name = f.get_string_or("tokenizer.ggml.pre", "");
  if (d.pre_name.empty()) fail("{}: tokenizer.ggml.pre is missing; the pre-tokenizer cannot be chosen", f.path());
  try {
    d.pre_regexes = pre_regexes_for(d.pre_name);
  } catch (const Error& e) {
    fail("{}: {}", f.path(), e.what());
  }
  d.nfc = d.pre_name == "qwen2" || d.pre_name == "deepseek-r1-qwen";
  d.ignore_merges = d.pre_name == "llama-bpe" || d.pre_name == "llama3";
}

}  // namespace

TokenizerData tokenizer_data_from_gguf(const GgufFile& f) {
  TokenizerData d;
  d.source = f.path();
  const std::string model = f.get_string_or("tokenizer.ggml.model", "");
  if (model == "gpt2") {
    read_byte_level_pre(f, d);
  } else if (model == "llama") {
    d.kind = TokenizerKind::SentencePiece;
    d.pre_name = f.get_string_or("tokenizer.ggml.pre", "default");
  } else {
    fail("{}: tokenizer.ggml.model is '{}'; supported are byte-level BPE ('gpt2') and SentencePiece ('llama')",
         f.path(), model);
  }

  d.tokens = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = d.tokens.size();
  d.token_types.assign(n, TokenType::Normal);
  if (f.has("tokenizer.ggml.token_type")) {
    const auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", f.path(), types.size(), n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 1 || types[i] > 6) fail("{}: token {} has unknown type {}", f.path(), i, types[i]);
      d.token_types[i] = static_cast<TokenType>(types[i]);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = d.token_types[i];
    if (t == TokenType::Control || t == TokenType::UserDefined)
      d.added_tokens.push_back({static_cast<int32_t>(i), d.tokens[i], t == TokenType::Control, false, false});
  }
  if (d.kind == TokenizerKind::ByteLevelBpe) d.merges = read_merges(f);
  if (d.kind == TokenizerKind::SentencePiece) {
    if (!f.has("tokenizer.ggml.scores")) fail("{}: tokenizer.ggml.scores is missing (SentencePiece)", f.path());
    const std::vector<double> scores = f.get_float_array("tokenizer.ggml.scores");
    if (scores.size() != n)
      fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", f.path(), scores.size(), n);
    d.scores.assign(scores.begin(), scores.end());
    d.add_space_prefix = f.get_bool_or("tokenizer.ggml.add_space_prefix", true);
  }

  d.bos_id = optional_id(f, "tokenizer.ggml.bos_token_id", n);
  d.eos_id = optional_id(f, "tokenizer.ggml.eos_token_id", n);
  d.pad_id = optional_id(f, "tokenizer.ggml.padding_token_id", n);
  if (d.kind == TokenizerKind::SentencePiece) d.unk_id = optional_id(f, "tokenizer.ggml.unknown_token_id", n);
  d.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", false) && d.bos_id >= 0;
  d.add_eos = f.get_bool_or("tokenizer.ggml.add_eos_token", false) && d.eos_id >= 0;
  d.chat_template = f.get_string_or("tokenizer.chat_template", "");
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (int32_t id = optional_id(f, key, n); id >= 0) d.stop_ids.push_back(id);
  d.add_default_stop_ids();
  return d;
}

}  // namespace arwkv
