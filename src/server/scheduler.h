// The scheduler: one thread owns the model (which runs one forward at a time) and serves sequences
// from a bounded queue, interleaving up to `parallel` active sequences token by token (round
// robin), each with its own state. A prompt's prefill runs in chunks so that it does not stall the
// others, and starts from the longest cached prefix state (PrefixCache) when there is one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "infer/loaded_model.h"
#include "infer/sampler.h"
#include "server/prefix_cache.h"
#include "server/sequence.h"

namespace arwkv {

struct SchedulerOptions {
  int parallel = 4;               // sequences decoded in turn
  int max_queue = 64;             // sequences waiting beyond those; more are refused
  int64_t ctx = 4096;             // most tokens (prompt + completion) of one sequence
  int64_t prefill_chunk = 256;    // prompt tokens fed per turn
  size_t cache_entries = 64;      // prefix cache bounds
  size_t cache_bytes = size_t{512} << 20;
};

// What to generate for one sequence.
struct SequenceRequest {
  std::vector<int32_t> prompt;        // not empty
  int max_tokens = 16;                // prompt.size() + max_tokens <= ctx
  SamplerOptions sampler;
  std::vector<std::string> stop;      // stop strings: the text ends before the first one
  int logprobs = -1;                  // -1: none; n >= 0: each token's log-probability and n alternatives
  bool echo = false;                  // return the prompt's text (and log-probabilities) first
  std::vector<size_t> cache_points;   // prompt lengths after which the state is worth caching
};

struct SchedulerMetrics {
  int64_t submitted = 0, rejected = 0, completed = 0, failed = 0, cancelled = 0;
  int64_t active = 0, queued = 0;
  int64_t prompt_tokens = 0, prefilled_tokens = 0, generated_tokens = 0;
  PrefixCacheStats cache;
};

// Thrown by submit when the queue cannot take the sequences.
class QueueFull : public Error {
 public:
  using Error::Error;
};

class Scheduler {
 public:
  Scheduler(const LoadedModel& model, const SchedulerOptions& opt);
  ~Scheduler();  // stops the thread; sequences not finished fail
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the sequences of one request, all or none; throws QueueFull when they do not fit.
  std::vector<std::shared_ptr<Sequence>> submit(std::vector<SequenceRequest> requests);
  SchedulerMetrics metrics() const;
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Active;
  void run();
  bool admit(std::vector<std::unique_ptr<Active>>& active);
  bool step(Active& a);  // one turn; true when the sequence has ended
  void start(Active& a);
  void prefill(Active& a);
  void decode(Active& a);
  void take_text(Active& a, const std::string& piece, bool last);
  void finish(Active& a, const std::string& reason);

  const LoadedModel& m_;
  SchedulerOptions opt_;
  PrefixCache cache_;
  std::vector<int32_t> stop_ids_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Active>> queue_;
  SchedulerMetrics metrics_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace arwkv
