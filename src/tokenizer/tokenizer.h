// The tokenizer: byte-level BPE that reproduces HF `tokenizers` for Qwen2/Qwen2.5 and SmolLM2, and
// SentencePiece BPE that reproduces sentencepiece and HF for Gemma 3.
// encode: added tokens are split out of the raw text first (leftmost, then longest match). Byte-level
// BPE: the text between them is NFC-normalised when the model asks, split by the pre-tokenizer, and
// each piece is BPE-encoded. SentencePiece: each stretch between them is encoded whole (spm.h).
// decode: the tokens' bytes are concatenated (a SentencePiece token's "▁" is a space, <0xXX> its
// byte), then made valid UTF-8.
// BOS: encode() never adds it; add_bos() says whether text encoded from its start (a document, a
// prompt) must begin with bos_id(), as HF does for Gemma; encode_start() does both.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv {

class Checkpoint;

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerData data);

  // parse_special: match special (CONTROL) added tokens such as <|im_start|> in text; non-special
  // added tokens are always matched. Any bytes are accepted, invalid UTF-8 included.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // encode(), with bos_id() in front where add_bos(): for text that starts a sequence.
  std::vector<int32_t> encode_start(std::string_view text, bool parse_special = true) const;
  bool add_bos() const { return data_.add_bos && data_.bos_id >= 0; }
  int32_t bos_id() const { return data_.bos_id; }
  // Valid UTF-8: invalid byte sequences become U+FFFD, as in HF.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The raw concatenated bytes (decode(encode(x)) == x bytewise for NFC-stable x).
  std::string decode_bytes(const std::vector<int32_t>& ids) const;

  const std::string& token_text(int32_t id) const;  // the token's raw bytes
  int32_t token_id(std::string_view text) const;    // vocabulary string → id, -1 if absent
  bool is_stop(int32_t id) const;
  bool is_special(int32_t id) const;  // CONTROL tokens
  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }
  const TokenizerData& data() const { return data_; }

 private:
  // at_start: text begins the whole input (where SentencePiece puts its space prefix).
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  // The next added token at or after pos: [begin, end) of the whole match (strips included), id.
  bool find_added(std::string_view text, size_t pos, bool parse_special, size_t& begin, size_t& end,
                  int32_t& id) const;

  TokenizerData data_;
  PreTokenizer pre_;
  std::optional<Bpe> bpe_;  // one of the two, by data_.kind
  std::optional<Spm> spm_;
  std::vector<std::string> token_bytes_;
  std::unordered_map<std::string, int32_t> ids_;
  // Added tokens by content (indices into data_.added_tokens; the views point into it), and the
  // lengths of those starting with each byte, longest first.
  std::unordered_map<std::string_view, std::vector<size_t>> added_by_content_;
  std::vector<std::vector<size_t>> added_lengths_;
  std::vector<bool> stop_;
};

// Streaming decode: push ids as they are generated and get the text they complete; bytes of a
// character cut between tokens are held back until it is complete.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer) : tok_(tokenizer) {}
  std::string push(int32_t id);
  std::string flush();  // what is still held back (U+FFFD for a cut-off character)

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

// The tokenizer of a checkpoint: from its GGUF metadata, or its tokenizer.json.
std::unique_ptr<Tokenizer> load_tokenizer(const Checkpoint& checkpoint);

}  // namespace arwkv
