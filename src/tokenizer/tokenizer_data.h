// What a tokenizer is made of, independent of where it was read from. Two kinds:
// - byte-level BPE (GGUF "gpt2"): the vocabulary (id → string in the GPT-2 byte-level alphabet),
//   merges in rank order, the pre-tokenizer as a list of regexes, NFC;
// - SentencePiece BPE (GGUF "llama"): the vocabulary (strings with U+2581 "▁" for space), a score
//   per token (higher merges first), byte-fallback tokens "<0xXX>" of type Byte, the unknown id and
//   whether a space is put in front of the text.
// Both: added/special tokens, the chat template, the special ids and whether BOS/EOS are added.
// Two readers fill it: HF tokenizer.json (tokenizer_json.cpp) and GGUF metadata (tokenizer_gguf.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace arwkv {

class GgufFile;

// The GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// A token matched literally in raw text before pre-tokenisation. special = HF "special" / GGUF
// CONTROL: only matched when the caller asks for special-token parsing. lstrip/rstrip swallow
// whitespace to the left/right of the match, as in HF.
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
};

enum class TokenizerKind {
  ByteLevelBpe,   // GPT-2 style: bytes mapped to printable characters, BPE by merge rank
  SentencePiece,  // SentencePiece BPE: characters merged by the score of their concatenation
};

struct TokenizerData {
  std::string source;  // the file it came from, for messages
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  std::vector<std::string> tokens;  // id → vocabulary string; added tokens hold their literal text
  std::vector<TokenType> token_types;  // same length as tokens
  std::vector<std::pair<std::string, std::string>> merges;  // rank order (byte-level BPE)
  std::vector<float> scores;  // SentencePiece: per token, same length as tokens; empty otherwise
  std::vector<AddedToken> added_tokens;
  // Each regex (PCRE2 syntax, HF spelling: \s means Unicode White_Space) splits every piece left
  // by the previous one; matches and the text between them all become pieces ("Isolated").
  std::vector<std::string> pre_regexes;
  std::string pre_name;         // GGUF tokenizer.ggml.pre, or "tokenizer.json"
  bool nfc = false;             // NFC-normalise text outside added tokens
  bool ignore_merges = false;   // a whole pre-token found in the vocabulary is used as is
  std::string chat_template;    // Jinja source; only ChatML-like templates are rendered
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t pad_id = -1;
  int32_t unk_id = -1;             // SentencePiece: for characters with neither a token nor byte tokens
  bool add_bos = false;            // a document or prompt encoded from its start begins with bos_id
  bool add_eos = false;            // ... and ends with eos_id (recorded; no caller appends it yet)
  bool add_space_prefix = false;   // SentencePiece: a space is put in front of the text
  std::vector<int32_t> stop_ids;  // end-of-generation ids: eos and friends

  // Fills stop_ids from eos_id and the end-of-turn texts (<|im_end|>, <|endoftext|>, ...).
  void add_default_stop_ids();
  int32_t find_token(const std::string& text) const;  // -1 when absent
};

// The pre-tokenizer regexes for a GGUF tokenizer.ggml.pre name ("qwen2", "smollm", "gpt-2",
// "llama-bpe", ...); throws arwkv::Error for names we do not know.
std::vector<std::string> pre_regexes_for(const std::string& pre_name);
extern const char* const kGpt2Regex;  // the GPT-2 / HF ByteLevel(use_regex) pattern

// HF tokenizer.json (model BPE with a byte-level pre-tokenizer). Also reads tokenizer_config.json,
// chat_template.jinja and generation_config.json next to it when present (special tokens, template,
// stop ids). Throws arwkv::Error naming the file and the problem.
TokenizerData load_tokenizer_json(const std::string& path);

// GGUF metadata tokenizer.* (tokenizer.ggml.model "gpt2" or "llama").
TokenizerData tokenizer_data_from_gguf(const GgufFile& gguf);

}  // namespace arwkv
