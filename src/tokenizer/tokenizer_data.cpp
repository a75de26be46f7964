// Pre-tokenizer regexes by GGUF name (FORMATS.md §4.3, §4.4, §4.6) and the default stop tokens.
#include "tokenizer/tokenizer_data.h"

#include <algorithm>

#include "core/error.h"

namespace arwkv {

const char* const kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Texts that end a turn or a document (llama.cpp's end-of-generation list).
constexpr const char* kStopTexts[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>",   "<|end_of_text|>",
                                      "<|end|>",    "<end_of_turn>", "<|eom_id|>",   "<EOT>",
                                      "<|return|>", "<|call|>",      "<end_of_utterance>"};

}  // namespace

std::vector<std::string> pre_regexes_for(const std::string& pre) {
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return {kQwen2Regex};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") return {R"(\p{N})", kGpt2Regex};
  if (pre == "gpt2" || pre == "gpt-2") return {kGpt2Regex};
  if (pre == "llama-bpe" || pre == "llama3") return {kLlama3Regex};
  fail("unknown pre-tokenizer '{}' (known: qwen2, smollm, starcoder, refact, gpt-2, llama-bpe)", pre);
}

int32_t TokenizerData::find_token(const std::string& text) const {
  auto it = std::find(tokens.begin(), tokens.end(), text);
  return it == tokens.end() ? -1 : static_cast<int32_t>(it - tokens.begin());
}

void TokenizerData::add_default_stop_ids() {
  auto add = [&](int32_t id) {
    if (id >= 0 && std::find(stop_ids.begin(), stop_ids.end(), id) == stop_ids.end()) stop_ids.push_back(id);
  };
  add(eos_id);
  for (const AddedToken& t : added_tokens)
    for (const char* text : kStopTexts)
      if (t.content == text) add(t.id);
}

}  // namespace arwkv
