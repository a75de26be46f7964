#include "infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/finite.h"

namespace arwkv {

int32_t argmax(std::span<const float> logits) {
  ARWKV_ASSERT(!logits.empty(), "argmax of empty logits");
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplerOptions& opt) : opt_(opt), rng_(opt.seed) {
  if (!(opt.temperature >= 0.0f) || !std::isfinite(opt.temperature)) fail("temperature must be >= 0, got {}", opt.temperature);
  if (opt.top_k < 0) fail("top-k must be >= 0, got {}", opt.top_k);
  if (!(opt.top_p > 0.0f && opt.top_p <= 1.0f)) fail("top-p must be in (0, 1], got {}", opt.top_p);
  if (opt.vocab < 0) fail("sampler: vocabulary size must be >= 0, got {}", opt.vocab);
}

int32_t Sampler::sample(std::span<const float> all_logits) {
  const std::span<const float> logits =
      opt_.vocab > 0 ? all_logits.first(std::min<size_t>(all_logits.size(), static_cast<size_t>(opt_.vocab))) : all_logits;
  if (const int64_t bad = count_nonfinite(logits); bad > 0)
    fail("the model's next-token logits are not finite ({} of {} are NaN or infinite): its weights or state hold "
         "non-finite values, or its activations overflowed",
         bad, logits.size());
  if (opt_.temperature == 0.0f) return argmax(logits);

  // Candidates sorted by logit, cut to top-k.
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  size_t k = opt_.top_k > 0 ? std::min<size_t>(static_cast<size_t>(opt_.top_k), candidates_.size()) : candidates_.size();
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(k), candidates_.end(), by_logit);
  candidates_.resize(k);

  // Softmax at the temperature, in double, then the nucleus cut.
  const double top = candidates_.front().first;
  std::vector<double> probs(k);
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) sum += probs[i] = std::exp((candidates_[i].first - top) / opt_.temperature);
  double cumulative = 0.0;
  size_t keep = k;
  for (size_t i = 0; i < k; ++i) {
    cumulative += probs[i] / sum;
    if (cumulative >= opt_.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(probs.begin(), probs.begin() + static_cast<ptrdiff_t>(keep));
  return candidates_[pick(rng_)].second;
}

}  // namespace arwkv
