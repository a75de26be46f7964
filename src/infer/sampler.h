// Next-token sampling from logits: greedy at temperature 0, else temperature, top-k and top-p
// (nucleus) with a seeded generator, so the same seed gives the same text.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace arwkv {

struct SamplerOptions {
  float temperature = 0.7f;  // 0 = greedy
  int top_k = 40;            // 0 = whole vocabulary
  float top_p = 0.95f;       // 1 = no nucleus cut
  uint64_t seed = 0;
  int32_t vocab = 0;         // only ids below this are drawn (the tokenizer's size; the head may be
                             // padded past it); 0 = every logit
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& opt);
  int32_t sample(std::span<const float> logits);

 private:
  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch, reused
};

int32_t argmax(std::span<const float> logits);

}  // namespace arwkv
