// SentencePiece BPE over one stretch of text (no added tokens in it), as sentencepiece and
// llama.cpp encode it: spaces become U+2581 "▁" (and one is put in front when asked), the text is
// split into UTF-8 characters (a user-defined token that holds a space, such as Gemma's whitespace
// runs, is matched there instead, longest first, and never merged further, as in sentencepiece),
// then the adjacent pair whose concatenation is a normal token with
// the highest score is merged (the leftmost on ties) until no pair forms a token. A piece left
// without a token becomes the byte-fallback tokens <0xXX> of its bytes (the unknown token when the
// vocabulary has none). Invalid UTF-8 is one character per byte. A max-heap of candidate pairs over
// a linked list of pieces makes that O(n log n).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer_data.h"

namespace arwkv {

inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

class Spm {
 public:
  // data must outlive the Spm (its token strings are the keys of the lookup table).
  explicit Spm(const TokenizerData& data);
  Spm(const Spm&) = delete;  // its tables hold views into its own strings: moved, never copied
  Spm& operator=(const Spm&) = delete;
  Spm(Spm&&) = default;
  Spm& operator=(Spm&&) = default;

  // Appends the ids of text (raw bytes, spaces still spaces) to out; space_prefix puts "▁" first.
  void encode(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;

  // The byte-fallback token of each byte, -1 where the vocabulary has none.
  int32_t byte_id(uint8_t b) const { return byte_ids_[b]; }

  // The user-defined tokens this class matches itself (the tokenizer must not split them out of raw
  // text): those whose text holds a space.
  static bool matches_user_token(const AddedToken& t);

 private:
  struct Piece {
    int32_t id;    // normal token id, or -1 for a piece without one
    float score;   // its score when merged
  };
  const Piece* find(std::string_view text) const;
  void emit(std::string_view piece, std::vector<int32_t>& out) const;
  // The id and byte length of the longest user token at text[i], or {-1, 0}.
  std::pair<int32_t, size_t> match_user(std::string_view text, size_t i) const;

  // FNV-1a: the pair lookups are most of the time spent, on short keys.
  struct Hash {
    size_t operator()(std::string_view s) const {
      uint64_t h = 1469598103934665603ull;
      for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
      return static_cast<size_t>(h);
    }
  };
  std::unordered_map<std::string_view, Piece, Hash> pieces_;  // normal tokens (the only merge results)
  std::vector<std::string> user_texts_;                       // user tokens, spaces spelled "▁"
  std::unordered_map<std::string_view, int32_t, Hash> user_;  // views into user_texts_
  std::unordered_set<std::string_view, Hash> user_prefixes_;  // their prefixes, whole characters
  std::array<int32_t, 256> byte_ids_{};
  int32_t unk_id_ = -1;
};

// "<0x41>" → 0x41; -1 when text is not a byte-fallback token's spelling.
int byte_token_value(std::string_view text);

}  // namespace arwkv
