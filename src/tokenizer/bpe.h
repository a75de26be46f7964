// Byte-level BPE over one pre-token: its bytes become symbols of the GPT-2 alphabet (bytes whose
// symbol is missing from the vocabulary are dropped, as HF does without an unk token), then the
// adjacent pair with the lowest merge rank is merged (leftmost on ties) until no pair has a rank.
// A linked list of symbols and a min-heap of candidate pairs make that O(n log n) per word; a cache
// keeps the ids of words already seen.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_data.h"

namespace arwkv {

class Bpe {
 public:
  explicit Bpe(const TokenizerData& data);

  // Appends the ids of one pre-token (raw bytes) to out.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;
  // The same without the cache (for tests and one-off words).
  void encode_word_uncached(std::string_view bytes, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;  // byte-level string → id
  std::unordered_map<uint64_t, Merge> merges_;     // (left id, right id) → rank, merged id
  std::array<int32_t, 256> byte_ids_{};            // id of each byte's symbol, -1 if absent
  bool ignore_merges_ = false;

  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> words;
  };
  static constexpr size_t kCacheLimit = 1 << 18;
  std::unique_ptr<Cache> cache_ = std::make_unique<Cache>();  // behind a pointer so Bpe can move
};

}  // namespace arwkv
