// SentencePiece BPE merge loop (see spm.h).
#include "tokenizer/spm.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace arwkv {

int byte_token_value(std::string_view t) {
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

namespace {

std::string escape_spaces(std::string_view raw) {
  std::string text;
  text.reserve(raw.size() + raw.size() / 4 + 3);
  for (char c : raw) {
    if (c == ' ')
      text += kSpmSpace;
    else
      text += c;
  }
  return text;
}

}  // namespace

bool Spm::matches_user_token(const AddedToken& t) {
  return !t.special && t.content.find(' ') != std::string::npos;
}

Spm::Spm(const TokenizerData& d) : unk_id_(d.unk_id) {
  std::vector<int32_t> user_ids;
  for (const AddedToken& t : d.added_tokens) {
    if (!matches_user_token(t)) continue;
    user_texts_.push_back(escape_spaces(t.content));
    user_ids.push_back(t.id);
  }
  for (size_t k = 0; k < user_texts_.size(); ++k) {  // user_texts_ is complete: the views stay valid
    const std::string_view text = user_texts_[k];
    user_.emplace(text, user_ids[k]);
    for (size_t i = 0; i < text.size();) {
      i += utf8::step(text, i).len;
      user_prefixes_.insert(text.substr(0, i));
    }
  }
  ARWKV_ASSERT(d.scores.size() == d.tokens.size(), "SentencePiece tokenizer without a score per token");
  byte_ids_.fill(-1);
  pieces_.reserve(d.tokens.size());
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    const std::string& t = d.tokens[id];
    if (d.token_types[id] == TokenType::Normal && !t.empty())
      pieces_.emplace(t, Piece{static_cast<int32_t>(id), d.scores[id]});  // the first id wins on duplicates
    if (d.token_types[id] == TokenType::Byte) {
      const int b = byte_token_value(t);
      if (b < 0) fail("{}: byte token {} is spelled '{}', expected <0xXX>", d.source, id, t);
      if (byte_ids_[b] < 0) byte_ids_[b] = static_cast<int32_t>(id);
    }
  }
}

std::pair<int32_t, size_t> Spm::match_user(std::string_view text, size_t i) const {
  std::pair<int32_t, size_t> best{-1, 0};
  if (user_.empty()) return best;
  // Grow the candidate a character at a time while it is the prefix of some user token.
  for (size_t end = i + utf8::step(text, i).len;; end += utf8::step(text, end).len) {
    const std::string_view candidate = text.substr(i, end - i);
    if (!user_prefixes_.count(candidate)) break;
    if (auto it = user_.find(candidate); it != user_.end()) best = {it->second, end - i};
    if (end >= text.size()) break;
  }
  return best;
}

const Spm::Piece* Spm::find(std::string_view text) const {
  auto it = pieces_.find(text);
  return it == pieces_.end() ? nullptr : &it->second;
}

void Spm::emit(std::string_view piece, std::vector<int32_t>& out) const {
  if (const Piece* p = find(piece)) {
    out.push_back(p->id);
    return;
  }
  for (char c : piece) {
    const int32_t b = byte_ids_[static_cast<uint8_t>(c)];
    if (b >= 0) {
      out.push_back(b);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
      return;  // one unknown token for the whole piece
    }
  }
}

void Spm::encode(std::string_view raw, bool space_prefix, std::vector<int32_t>& out) const {
  const std::string text = escape_spaces(space_prefix ? " " + std::string(raw) : std::string(raw));
  if (text.empty()) return;

  // Pieces as a doubly linked list over their first byte; a merged-away piece has len 0. A user
  // token is a frozen piece (user >= 0): it takes part in no merge.
  std::vector<int32_t> begin, len, prev, next, user;
  for (size_t i = 0; i < text.size();) {
    auto [id, n] = match_user(text, i);
    if (id < 0) n = utf8::step(text, i).len;
    begin.push_back(static_cast<int32_t>(i));
    len.push_back(static_cast<int32_t>(n));
    user.push_back(id);
    i += n;
  }
  const auto n = static_cast<int32_t>(begin.size());
  prev.resize(n);
  next.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }

  struct Candidate {
    float score;
    int32_t left, size;  // size: the merged length in bytes, to recognise a stale candidate
    bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Candidate> heap;
  auto push = [&](int32_t left) {
    if (left < 0 || next[left] < 0 || user[left] >= 0 || user[next[left]] >= 0) return;
    const int32_t size = len[left] + len[next[left]];
    if (const Piece* p = find(std::string_view(text).substr(begin[left], size))) heap.push({p->score, left, size});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t right = next[c.left];
    if (len[c.left] == 0 || right < 0 || len[c.left] + len[right] != c.size) continue;  // stale
    len[c.left] = c.size;
    len[right] = 0;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    push(prev[c.left]);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) {
    if (user[i] >= 0)
      out.push_back(user[i]);
    else
      emit(std::string_view(text).substr(begin[i], len[i]), out);
  }
}

}  // namespace arwkv
