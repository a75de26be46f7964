#include "server/prefix_cache.h"

#include <algorithm>

#include "backend/ops.h"
#include "core/error.h"

namespace arwkv {

void copy_state(const LanguageModel& model, ModelState& src, ModelState& dst) {
  dst.set_n_tokens(src.n_tokens());
  std::vector<StateTensor> from = src.tensors(), to = dst.tensors();
  ARWKV_ASSERT(from.size() == to.size(), "copy_state: {} tensors into {}", from.size(), to.size());
  for (size_t i = 0; i < from.size(); ++i) {
    ARWKV_ASSERT(from[i].name == to[i].name, "copy_state: tensor {} into {}", from[i].name, to[i].name);
    model.ops().copy(to[i].tensor, from[i].tensor);
  }
}

PrefixCache::PrefixCache(const LanguageModel& model, size_t max_entries, size_t max_bytes)
    : model_(model), max_entries_(max_entries), max_bytes_(max_bytes) {}

const PrefixCache::Entry* PrefixCache::lookup(std::span<const int32_t> ids) {
  ++stats_.lookups;
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const auto& t = it->tokens;
    if (t.size() > ids.size() || (best != entries_.end() && t.size() <= best->tokens.size())) continue;
    if (std::equal(t.begin(), t.end(), ids.begin())) best = it;
  }
  if (best == entries_.end()) return nullptr;
  ++stats_.hits;
  stats_.hit_tokens += static_cast<int64_t>(best->tokens.size());
  entries_.splice(entries_.begin(), entries_, best);
  return &entries_.front();
}

bool PrefixCache::contains(std::span<const int32_t> tokens) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin(), tokens.end());
  });
}

void PrefixCache::evict_to_fit(size_t incoming) {
  while (!entries_.empty() &&
         (entries_.size() + 1 > max_entries_ || static_cast<size_t>(stats_.bytes) + incoming > max_bytes_)) {
    stats_.bytes -= static_cast<int64_t>(entries_.back().bytes);
    entries_.pop_back();
    ++stats_.evictions;
  }
  stats_.entries = static_cast<int64_t>(entries_.size());
}

void PrefixCache::insert(std::span<const int32_t> tokens, ModelState& state, std::span<const float> logits) {
  if (max_entries_ == 0 || tokens.empty() || contains(tokens)) return;
  ARWKV_ASSERT(state.n_tokens() == static_cast<int64_t>(tokens.size()), "prefix cache: a state of {} tokens for {}",
               state.n_tokens(), tokens.size());
  Entry e;
  e.tokens.assign(tokens.begin(), tokens.end());
  e.state = model_.new_state(static_cast<int64_t>(tokens.size()));
  copy_state(model_, state, *e.state);
  e.logits.assign(logits.begin(), logits.end());
  e.bytes = e.state->memory_bytes() + e.logits.size() * sizeof(float) + e.tokens.size() * sizeof(int32_t);
  if (e.bytes > max_bytes_) return;
  evict_to_fit(e.bytes);
  stats_.bytes += static_cast<int64_t>(e.bytes);
  entries_.push_front(std::move(e));
  ++stats_.inserts;
  stats_.entries = static_cast<int64_t>(entries_.size());
}

}  // namespace arwkv
