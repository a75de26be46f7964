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
  if (!(opt.repeat_penalty >= 1.0f) || !std::isfinite(opt.repeat_penalty))
    fail("repeat penalty must be >= 1 (1 = off), got {}", opt.repeat_penalty);
  if (!(std::abs(opt.presence_penalty) <= 2.0f)) fail("presence penalty must be in [-2, 2], got {}", opt.presence_penalty);
  if (!(std::abs(opt.frequency_penalty) <= 2.0f)) fail("frequency penalty must be in [-2, 2], got {}", opt.frequency_penalty);
  if (opt.repeat_last_n < 0) fail("repeat-last-n must be >= 0, got {}", opt.repeat_last_n);
}

bool Sampler::penalising() const {
  return opt_.repeat_last_n > 0 &&
         (opt_.repeat_penalty != 1.0f || opt_.presence_penalty != 0.0f || opt_.frequency_penalty != 0.0f);
}

std::span<const float> Sampler::penalised(std::span<const float> logits) {
  if (recent_count_.empty()) return logits;
  penalised_.assign(logits.begin(), logits.end());
  for (const auto& [id, count] : recent_count_) {
    if (static_cast<size_t>(id) >= penalised_.size()) continue;
    float& l = penalised_[static_cast<size_t>(id)];
    l = l > 0.0f ? l / opt_.repeat_penalty : l * opt_.repeat_penalty;
    l -= opt_.presence_penalty + opt_.frequency_penalty * static_cast<float>(count);
  }
  return penalised_;
}

void Sampler::remember(int32_t id) {
  recent_.push_back(id);
  ++recent_count_[id];
  if (static_cast<int>(recent_.size()) > opt_.repeat_last_n) {
    const int32_t old = recent_.front();
    recent_.pop_front();
    if (--recent_count_[old] == 0) recent_count_.erase(old);
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (!penalising()) return draw(logits);
  const int32_t id = draw(logits);
  remember(id);
  return id;
}

int32_t Sampler::draw(std::span<const float> all_logits) {
  const std::span<const float> raw =
      opt_.vocab > 0 ? all_logits.first(std::min<size_t>(all_logits.size(), static_cast<size_t>(opt_.vocab))) : all_logits;
  if (const int64_t bad = count_nonfinite(raw); bad > 0)
    fail("the model's next-token logits are not finite ({} of {} are NaN or infinite): its weights or state hold "
         "non-finite values, or its activations overflowed",
         bad, raw.size());
  const std::span<const float> logits = penalised(raw);
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
