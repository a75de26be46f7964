// Tokenizer from GGUF metadata (FORMATS.md §4.5): tokenizer.ggml.model "gpt2" (byte-level BPE),
// .pre (pre-tokenizer name), .tokens, .token_type (INT32, 1 normal … 6 byte), .merges ("left right"
// in rank order), .bos/eos/padding/eot/eom_token_id, and tokenizer.chat_template. CONTROL tokens
// become special added tokens, USER_DEFINED ones non-special added tokens.
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

}  // namespace

TokenizerData tokenizer_data_from_gguf(const GgufFile& f) {
  TokenizerData d;
  d.source = f.path();
  const std::string model = f.get_string_or("tokenizer.ggml.model", "");
  if (model != "gpt2")
    fail("{}: tokenizer.ggml.model is '{}'; only byte-level BPE ('gpt2') is supported", f.path(), model);
  d.pre_name = f.get_string_or("tokenizer.ggml.pre", "");
  if (d.pre_name.empty()) fail("{}: tokenizer.ggml.pre is missing; the pre-tokenizer cannot be chosen", f.path());
  try {
    d.pre_regexes = pre_regexes_for(d.pre_name);
  } catch (const Error& e) {
    fail("{}: {}", f.path(), e.what());
  }
  d.nfc = d.pre_name == "qwen2" || d.pre_name == "deepseek-r1-qwen";
  d.ignore_merges = d.pre_name == "llama-bpe" || d.pre_name == "llama3";

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
  d.merges = read_merges(f);

  d.bos_id = optional_id(f, "tokenizer.ggml.bos_token_id", n);
  d.eos_id = optional_id(f, "tokenizer.ggml.eos_token_id", n);
  d.pad_id = optional_id(f, "tokenizer.ggml.padding_token_id", n);
  d.chat_template = f.get_string_or("tokenizer.chat_template", "");
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (int32_t id = optional_id(f, key, n); id >= 0) d.stop_ids.push_back(id);
  d.add_default_stop_ids();
  return d;
}

}  // namespace arwkv
