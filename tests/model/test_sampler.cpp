// The sampler against direct computation: greedy is the argmax, a seed fixes the draw, top-k keeps
// the k best, and ids at or past the tokenizer's size (a padded head) are never drawn.
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

}  // namespace
}  // namespace arwkv
