// Byte-level BPE merge loop (see bpe.h).
#include "tokenizer/bpe.h"

#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace arwkv {

Bpe::Bpe(const TokenizerData& data) : ignore_merges_(data.ignore_merges) {
  vocab_.reserve(data.tokens.size());
  for (size_t id = 0; id < data.tokens.size(); ++id) {
    if (data.token_types[id] == TokenType::Unused || data.tokens[id].empty()) continue;
    vocab_.emplace(data.tokens[id], static_cast<int32_t>(id));  // the first id wins on duplicates
  }
  const auto& table = utf8::byte_to_code_point();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8::append(s, table[b]);
    auto it = vocab_.find(s);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  merges_.reserve(data.merges.size());
  for (size_t rank = 0; rank < data.merges.size(); ++rank) {
    const auto& [left, right] = data.merges[rank];
    auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end()) continue;  // unusable merge
    merges_.emplace(pair_key(l->second, r->second), Merge{static_cast<int32_t>(rank), m->second});
  }
}

void Bpe::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  std::string key(bytes);
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(key);
    if (it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  encode_word_uncached(bytes, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kCacheLimit) cache_->words.clear();
  cache_->words.emplace(std::move(key), std::move(ids));
}

void Bpe::encode_word_uncached(std::string_view bytes, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = vocab_.find(utf8::to_byte_level(bytes));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols as a doubly linked list over positions; a merged-away symbol has id -1.
  std::vector<int32_t> id, prev, next;
  for (char c : bytes) {
    const int32_t b = byte_ids_[static_cast<uint8_t>(c)];
    if (b >= 0) id.push_back(b);
  }
  const auto n = static_cast<int32_t>(id.size());
  if (n == 0) return;
  prev.resize(n);
  next.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }

  struct Candidate {
    int32_t rank, left, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    auto it = merges_.find(pair_key(id[left], id[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left, id[left], id[next[left]]});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t right = next[c.left];
    if (id[c.left] != c.left_id || right < 0 || id[right] != c.right_id) continue;  // stale
    id[c.left] = merges_.at(pair_key(c.left_id, c.right_id)).result;
    id[right] = -1;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    push(prev[c.left]);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace arwkv
