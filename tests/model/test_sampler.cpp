// The sampler against direct computation: greedy is the argmax, a seed fixes the draw, top-k keeps
// the k best, ids at or past the tokenizer's size (a padded head) are never drawn, and the repetition
// penalties change the draws as their definitions say (sequences worked out by hand below).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/error.h"
#include "infer/sampler.h"

namespace arwkv {
namespace {

TEST(Sampler, GreedyIsTheArgmax) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler s({.temperature = 0.0f});
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, TopKDrawsOnlyAmongTheBestAndTheSeedFixesTheDraws) {
  const std::vector<float> logits = {3.0f, 0.0f, 2.9f, 0.1f, 2.8f};
  auto draws = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .top_k = 3, .top_p = 1.0f, .seed = seed});
    std::vector<int32_t> ids;
    for (int i = 0; i < 200; ++i) ids.push_back(s.sample(logits));
    return ids;
  };
  const std::vector<int32_t> a = draws(7);
  EXPECT_EQ(a, draws(7));
  EXPECT_NE(a, draws(8));
  EXPECT_EQ(std::set<int32_t>(a.begin(), a.end()), (std::set<int32_t>{0, 2, 4}));
}

TEST(Sampler, IdsPastTheVocabularyAreNeverDrawn) {
  // The head has 6 rows; the tokenizer knows 4. The padding rows carry the largest logits.
  const std::vector<float> logits = {0.5f, 0.0f, 0.4f, 0.3f, 9.0f, 8.0f};
  Sampler greedy({.temperature = 0.0f, .vocab = 4});
  EXPECT_EQ(greedy.sample(logits), 0);
  Sampler all({.temperature = 2.0f, .top_k = 0, .top_p = 1.0f, .seed = 1, .vocab = 4});
  std::set<int32_t> seen;
  for (int i = 0; i < 500; ++i) seen.insert(all.sample(logits));
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2, 3}));
  // Without the bound the padding row wins, so the bound is what keeps it out.
  EXPECT_EQ(Sampler({.temperature = 0.0f}).sample(logits), 4);
  EXPECT_THROW(Sampler({.vocab = -1}), Error);
}

// Greedy draws from fixed logits, the same logits every step.
std::vector<int32_t> greedy_draws(const std::vector<float>& logits, SamplerOptions o, int n) {
  o.temperature = 0.0f;
  Sampler s(o);
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(s.sample(logits));
  return ids;
}

TEST(Sampler, WithoutPenaltiesGreedyRepeatsItself) {
  EXPECT_EQ(greedy_draws({1.0f, 2.0f, 0.0f, 3.0f}, {}, 4), (std::vector<int32_t>{3, 3, 3, 3}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  // 3.0 / 2 = 1.5 < 2.0: token 1 next; then 1.0, 1.0, 0, 1.5: token 3 again.
  EXPECT_EQ(greedy_draws({1.0f, 2.0f, 0.0f, 3.0f}, {.repeat_penalty = 2.0f}, 3), (std::vector<int32_t>{3, 1, 3}));
  // -1.0 * 2 = -2.0 < -1.5: token 1 next.
  EXPECT_EQ(greedy_draws({-1.0f, -1.5f}, {.repeat_penalty = 2.0f}, 2), (std::vector<int32_t>{0, 1}));
}

TEST(Sampler, FrequencyPenaltyCountsOccurrencesAndPresencePenaltyDoesNot) {
  // 1.0 - 0.4 n: 0.6 and 0.2 still beat 0.0, -0.2 does not.
  EXPECT_EQ(greedy_draws({1.0f, 0.0f}, {.frequency_penalty = 0.4f}, 4), (std::vector<int32_t>{0, 0, 0, 1}));
  // 1.0 - 0.5 once, whatever the count.
  EXPECT_EQ(greedy_draws({1.0f, 0.0f}, {.presence_penalty = 0.5f}, 4), (std::vector<int32_t>{0, 0, 0, 0}));
  // A negative presence penalty rewards repeating.
  EXPECT_EQ(greedy_draws({1.0f, 1.2f}, {.presence_penalty = -0.5f}, 3), (std::vector<int32_t>{1, 1, 1}));
}

TEST(Sampler, PenaltiesSeeOnlyTheLastNDrawnTokens) {
  // Penalty 4 on 2.0, 1.5, 1.0 gives 0.5, 0.375.
  EXPECT_EQ(greedy_draws({2.0f, 1.5f, 1.0f}, {.repeat_penalty = 4.0f, .repeat_last_n = 1}, 4),
            (std::vector<int32_t>{0, 1, 0, 1}));
  EXPECT_EQ(greedy_draws({2.0f, 1.5f, 1.0f}, {.repeat_penalty = 4.0f, .repeat_last_n = 2}, 4),
            (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(greedy_draws({2.0f, 1.5f, 1.0f}, {.repeat_penalty = 4.0f, .repeat_last_n = 0}, 3),
            (std::vector<int32_t>{0, 0, 0}));
}

TEST(Sampler, PenaltiesApplyWhenSamplingToo) {
  // Token 0 dominates at temperature 1 until its frequency penalty (2 per draw) pulls it below token 1.
  const std::vector<float> logits = {10.0f, 0.0f};
  Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 3, .frequency_penalty = 2.0f, .repeat_last_n = 8});
  std::set<int32_t> seen;
  for (int i = 0; i < 16; ++i) seen.insert(s.sample(logits));
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1}));
}

TEST(Sampler, BadPenaltiesAreRefused) {
  EXPECT_THROW(Sampler({.repeat_penalty = 0.5f}), Error);
  EXPECT_THROW(Sampler({.presence_penalty = 2.5f}), Error);
  EXPECT_THROW(Sampler({.frequency_penalty = -3.0f}), Error);
  EXPECT_THROW(Sampler({.repeat_last_n = -1}), Error);
}

}  // namespace
}  // namespace arwkv
