#include "infer/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace arwkv {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

double GenerateStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerateStats::decode_tokens_per_second() const {
  // Every new token is fed back through the model once: one decode step each.
  return decode_seconds > 0 ? static_cast<double>(new_tokens) / decode_seconds : 0.0;
}

GenerateStats generate(const LanguageModel& model, ModelState& state, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const std::function<bool(int32_t)>& on_token,
                       std::vector<float>* logits_io) {
  if (prompt.empty() && (!logits_io || logits_io->empty()))
    fail("generate: nothing to continue from: the prompt has no tokens and no state was restored");
  GenerateStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  Sampler sampler(opt.sampler);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = prompt.empty() ? *logits_io : model.extend(state, prompt);
  stats.prefill_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opt.max_new_tokens; ++i) {
    int32_t id = sampler.sample(logits);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) != opt.stop_ids.end()) {
      stats.stopped = true;
      break;
    }
    ++stats.new_tokens;
    if (!on_token(id)) {
      stats.stopped = true;
      break;
    }
    const int32_t next[1] = {id};
    logits = model.extend(state, next);
  }
  stats.decode_seconds = seconds_since(t0);
  if (logits_io) *logits_io = std::move(logits);
  return stats;
}

}  // namespace arwkv
