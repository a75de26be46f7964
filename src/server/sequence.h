// One sequence being generated for a request, as seen from both sides: the scheduler thread emits
// text (and per-token log-probabilities) as tokens are chosen and finally the finish reason; the
// HTTP handler thread waits for what has come and streams or collects it. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace arwkv {

// One token of the returned text in the OpenAI completions logprobs format.
struct TokenLogprob {
  std::string token;                                // the token's text
  std::optional<float> logprob;                     // none for the first token of an echoed prompt
  std::optional<std::vector<std::pair<std::string, float>>> top;  // most likely first; none: null
  size_t text_offset = 0;                           // byte offset of the token in the returned text
};

struct SequenceOutput {
  std::string text;
  std::vector<TokenLogprob> tokens;  // only when log-probabilities were asked for
};

class Sequence {
 public:
  // Scheduler side.
  void emit(const std::string& text, std::vector<TokenLogprob> tokens);
  void finish(const std::string& reason, int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens);
  void fail(const std::string& message);
  bool cancelled() const;

  // Handler side. Waits until something new has come or the sequence has ended, and appends it to
  // out. Returns true while more may come, false once the sequence has ended (out then holds the rest).
  bool wait(SequenceOutput& out);
  void cancel();  // the client went away: the scheduler drops the sequence at its next step

  // Valid after wait() returned false.
  const std::string& finish_reason() const { return finish_reason_; }
  const std::string& error() const { return error_; }  // empty unless the sequence failed
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  int64_t cached_tokens() const { return cached_tokens_; }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  SequenceOutput pending_;
  bool done_ = false, cancelled_ = false;
  std::string finish_reason_, error_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, cached_tokens_ = 0;
};

}  // namespace arwkv
