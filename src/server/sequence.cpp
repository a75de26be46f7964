#include "server/sequence.h"

namespace arwkv {

void Sequence::emit(const std::string& text, std::vector<TokenLogprob> tokens) {
  if (text.empty() && tokens.empty()) return;
  {
    std::lock_guard lock(mutex_);
    pending_.text += text;
    for (auto& t : tokens) pending_.tokens.push_back(std::move(t));
  }
  cv_.notify_all();
}

void Sequence::finish(const std::string& reason, int64_t prompt_tokens, int64_t completion_tokens,
                      int64_t cached_tokens) {
  {
    std::lock_guard lock(mutex_);
    finish_reason_ = reason;
    prompt_tokens_ = prompt_tokens;
    completion_tokens_ = completion_tokens;
    cached_tokens_ = cached_tokens;
    done_ = true;
  }
  cv_.notify_all();
}

void Sequence::fail(const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    error_ = message.empty() ? "internal error" : message;
    done_ = true;
  }
  cv_.notify_all();
}

bool Sequence::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void Sequence::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

bool Sequence::wait(SequenceOutput& out) {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return done_ || !pending_.text.empty() || !pending_.tokens.empty(); });
  out.text += pending_.text;
  for (auto& t : pending_.tokens) out.tokens.push_back(std::move(t));
  pending_ = {};
  return !done_;
}

}  // namespace arwkv
