#include "server/logprobs.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace arwkv {

TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int n_top, const Tokenizer& tok) {
  const float top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - top);
  const double log_z = top + std::log(sum);
  TokenLogprob out;
  out.token = tok.decode({id});
  out.logprob = static_cast<float>(logits[static_cast<size_t>(id)] - log_z);
  if (n_top < 0) return out;
  const size_t n = std::min<size_t>(static_cast<size_t>(n_top), logits.size());
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
  out.top.emplace();
  for (size_t i = 0; i < n; ++i)
    out.top->emplace_back(tok.decode({ids[i]}), static_cast<float>(logits[static_cast<size_t>(ids[i])] - log_z));
  return out;
}

}  // namespace arwkv
