// Next-token sampling from logits: greedy at temperature 0, else temperature, top-k and top-p
// (nucleus) with a seeded generator, so the same seed gives the same text. Repetition penalties
// (off by default) look at the tokens this sampler drew last: the multiplicative one of CTRL, HF
// and llama.cpp (a positive logit divided by it, a negative one multiplied), then OpenAI's
// presence (once per distinct token) and frequency (per occurrence) penalties, subtracted.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

namespace arwkv {

struct SamplerOptions {
  float temperature = 0.7f;  // 0 = greedy
  int top_k = 40;            // 0 = whole vocabulary
  float top_p = 0.95f;       // 1 = no nucleus cut
  uint64_t seed = 0;
  int32_t vocab = 0;         // only ids below this are drawn (the tokenizer's size; the head may be
                             // padded past it); 0 = every logit
  float repeat_penalty = 1.0f;     // >= 1 penalises, 1 = off
  float presence_penalty = 0.0f;   // in [-2, 2], 0 = off
  float frequency_penalty = 0.0f;  // in [-2, 2], 0 = off
  int repeat_last_n = 64;          // how many of the last drawn tokens the penalties see
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& opt);
  // Draws the next token and remembers it for the repetition penalties.
  int32_t sample(std::span<const float> logits);

 private:
  bool penalising() const;
  std::span<const float> penalised(std::span<const float> logits);
  int32_t draw(std::span<const float> logits);
  void remember(int32_t id);

  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch, reused
  std::deque<int32_t> recent_;                         // the last repeat_last_n drawn ids
  std::unordered_map<int32_t, int> recent_count_;      // occurrences of each id in recent_
  std::vector<float> penalised_;                       // scratch: the logits after the penalties
};

int32_t argmax(std::span<const float> logits);

}  // namespace arwkv
