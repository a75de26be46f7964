// A bounded LRU cache of model states after common token prefixes (a chat's rendered system prompt,
// a repeated prompt), so a request that starts with a cached prefix copies that state and feeds only
// the rest. Keyed by token ids; bounded by entry count and bytes. Used by one thread (the scheduler).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <vector>

#include "model/language_model.h"

namespace arwkv {

// Copies src into dst (a state of the same model able to hold src's tokens) through the model's
// ops: dst then holds exactly what src holds.
void copy_state(const LanguageModel& model, ModelState& src, ModelState& dst);

struct PrefixCacheStats {
  int64_t lookups = 0;
  int64_t hits = 0;
  int64_t hit_tokens = 0;  // prompt tokens not fed thanks to hits
  int64_t inserts = 0;
  int64_t evictions = 0;
  int64_t entries = 0;
  int64_t bytes = 0;
};

class PrefixCache {
 public:
  struct Entry {
    std::vector<int32_t> tokens;
    std::unique_ptr<ModelState> state;  // holds exactly tokens
    std::vector<float> logits;          // after the last token
    size_t bytes = 0;
  };

  PrefixCache(const LanguageModel& model, size_t max_entries, size_t max_bytes);

  // The entry with the longest token list that is a prefix of ids (at most all of ids), made the
  // most recently used; null when none matches.
  const Entry* lookup(std::span<const int32_t> ids);
  // Stores a copy of state (which holds tokens) and its last logits, unless an entry for exactly
  // these tokens exists or the copy alone would exceed the byte bound; evicts the least recently
  // used entries to stay within the bounds.
  void insert(std::span<const int32_t> tokens, ModelState& state, std::span<const float> logits);
  bool contains(std::span<const int32_t> tokens) const;
  PrefixCacheStats stats() const { return stats_; }

 private:
  void evict_to_fit(size_t incoming);

  const LanguageModel& model_;
  size_t max_entries_, max_bytes_;
  std::list<Entry> entries_;  // most recently used first
  PrefixCacheStats stats_;
};

}  // namespace arwkv
