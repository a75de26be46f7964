// Writes a TokenizerData as an HF tokenizer directory: tokenizer.json (model BPE with vocab and
// merges as [left, right] pairs, added_tokens with their special flags, an NFC normalizer when the
// tokenizer asks for one, a pre-tokenizer Sequence of Split{Regex, Isolated} per pre-tokenizer
// regex followed by ByteLevel{use_regex false}, ByteLevel decoder) and tokenizer_config.json
// (bos/eos/pad token, chat template). load_tokenizer_json() and HF `tokenizers` read the result
// back to the same ids. Used by `arwkv convert` when the teacher was a GGUF file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/tokenizer_data.h"

namespace arwkv {

// The tokenizer.json document. Vocabulary strings that repeat keep their first id; empty strings
// (ids with no token) are left out of the vocabulary.
nlohmann::json tokenizer_json(const TokenizerData& d);

// The tokenizer_config.json document: special tokens by content (null when absent), the chat
// template, add_bos_token false.
nlohmann::json tokenizer_config_json(const TokenizerData& d);

// Writes dir/tokenizer.json and dir/tokenizer_config.json (dir must exist). Throws arwkv::Error
// naming the tokenizer's source and the file for anything that cannot be written (e.g. a token
// that is not valid UTF-8).
void write_tokenizer_files(const TokenizerData& d, const std::string& dir);

}  // namespace arwkv
