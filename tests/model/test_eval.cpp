// Held-out metrics against direct computations from the models' logits: perplexity, mean KL and
// top-1 agreement, window by window.
#include <cmath>

#include "backend/ops.h"
#include "eval/compare.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher.h"
#include "test_util.h"

using namespace arwkv;

namespace {

struct Loaded {
  std::unique_ptr<Checkpoint> ck;
  std::unique_ptr<Teacher> model;
};

Loaded load(const std::string& name, Ops& ops) {
  Loaded l;
  l.ck = Checkpoint::open(test::data_path("teacher/" + name));
  l.model = std::make_unique<Teacher>(*l.ck, ops);
  return l;
}

// Softmax of one row in long double, written independently of eval/compare.cpp.
std::vector<long double> probs(const float* row, int64_t V) {
  long double mx = row[0], sum = 0;
  for (int64_t v = 0; v < V; ++v) mx = std::max<long double>(mx, row[v]);
  std::vector<long double> p(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) sum += p[static_cast<size_t>(v)] = std::exp(row[v] - mx);
  for (auto& x : p) x /= sum;
  return p;
}

std::vector<int32_t> random_ids(size_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

}  // namespace

TEST(Eval, MetricsEqualDirectComputation) {
  auto ops = make_cpu_ops();
  Loaded a = load("qwen2_tiny", *ops), b = load("llama_tiny", *ops);
  const auto V = a.model->config().vocab_size;
  std::vector<int32_t> ids = random_ids(45, static_cast<int32_t>(V), 11);
  EvalOptions opt;
  opt.window = 16;  // windows [0,16) [16,32) [32,45)

  long double nll_a = 0, nll_b = 0, kl = 0;
  int64_t n = 0, agree = 0;
  for (size_t start = 0; start + 1 < ids.size(); start += 16) {
    std::span<const int32_t> w(ids.data() + start, std::min<size_t>(16, ids.size() - start));
    HostTensor la = a.model->forward(w), lb = b.model->forward(w);
    for (size_t t = 0; t + 1 < w.size(); ++t, ++n) {
      auto p = probs(la.values.data() + t * V, V), q = probs(lb.values.data() + t * V, V);
      nll_a -= std::log(p[static_cast<size_t>(w[t + 1])]);
      nll_b -= std::log(q[static_cast<size_t>(w[t + 1])]);
      for (int64_t v = 0; v < V; ++v) kl += p[static_cast<size_t>(v)] * std::log(p[static_cast<size_t>(v)] / q[static_cast<size_t>(v)]);
      agree += std::max_element(p.begin(), p.end()) - p.begin() == std::max_element(q.begin(), q.end()) - q.begin();
    }
  }
  EvalResult single = evaluate(*a.model, ids, opt);
  EXPECT_EQ(single.tokens, n);
  EXPECT_NEAR(single.perplexity(), std::exp(static_cast<double>(nll_a / n)), 1e-6 * single.perplexity());

  EvalResult r = compare(*a.model, *b.model, ids, opt);
  EXPECT_EQ(r.tokens, 15 + 15 + 12);
  EXPECT_NEAR(r.teacher_perplexity(), std::exp(static_cast<double>(nll_a / n)), 1e-6 * r.teacher_perplexity());
  EXPECT_NEAR(r.perplexity(), std::exp(static_cast<double>(nll_b / n)), 1e-6 * r.perplexity());
  EXPECT_GT(r.mean_kl, 0.0);
  EXPECT_NEAR(r.mean_kl, static_cast<double>(kl / n), 1e-6);
  EXPECT_DOUBLE_EQ(r.top1_agreement, static_cast<double>(agree) / n);

  EvalResult self = compare(*a.model, *a.model, ids, opt);
  EXPECT_NEAR(self.mean_kl, 0.0, 1e-9);
  EXPECT_DOUBLE_EQ(self.top1_agreement, 1.0);
}

// With a BOS id, a window that does not start with it is read after one; the same tokens are
// scored (a window already starting with BOS is read as it is).
TEST(Eval, WindowsReadAfterBosWhereAsked) {
  auto ops = make_cpu_ops();
  Loaded a = load("qwen2_tiny", *ops);
  const auto V = a.model->config().vocab_size;
  std::vector<int32_t> ids = random_ids(40, static_cast<int32_t>(V), 5);
  const int32_t bos = 7;
  ids[20] = bos;  // the second window starts with it
  if (ids[0] == bos) ids[0] = 8;
  EvalOptions opt;
  opt.window = 20;
  opt.bos = bos;
  long double nll = 0;
  int64_t n = 0;
  for (size_t start : {size_t{0}, size_t{20}}) {
    std::vector<int32_t> w(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.begin() + static_cast<std::ptrdiff_t>(start) + 20);
    const int64_t off = w.front() == bos ? 0 : 1;
    if (off) w.insert(w.begin(), bos);
    const HostTensor l = a.model->forward(w);
    for (size_t t = static_cast<size_t>(off); t + 1 < w.size(); ++t, ++n)
      nll -= std::log(probs(l.values.data() + t * V, V)[static_cast<size_t>(w[t + 1])]);
  }
  const EvalResult r = evaluate(*a.model, ids, opt);
  EXPECT_EQ(r.tokens, 38);
  EXPECT_EQ(n, 38);
  EXPECT_NEAR(r.nll, static_cast<double>(nll / n), 1e-6);
  opt.bos = -1;
  EXPECT_GT(std::abs(evaluate(*a.model, ids, opt).nll - r.nll), 1e-4);  // BOS in front changed the first window
  opt.bos = bos;
  EXPECT_NEAR(compare(*a.model, *a.model, ids, opt).teacher_nll, r.nll, 1e-6);
}

TEST(Eval, ScoresByPositionAreTheMeansOfTheirPredictions) {
  auto ops = make_cpu_ops();
  Loaded a = load("qwen2_tiny", *ops), b = load("llama_tiny", *ops);
  const auto V = a.model->config().vocab_size;
  std::vector<int32_t> ids = random_ids(45, static_cast<int32_t>(V), 12);
  EvalOptions opt;
  opt.window = 16;  // windows [0,16) [16,32) [32,45): 15, 15 and 12 predictions

  // Buckets by tokens of context: 1, 2-3, 4-7, 8-15, directly from the logits.
  long double nll[4] = {}, teacher_nll[4] = {}, kl[4] = {};
  int64_t count[4] = {};
  for (size_t start = 0; start + 1 < ids.size(); start += 16) {
    std::span<const int32_t> w(ids.data() + start, std::min<size_t>(16, ids.size() - start));
    HostTensor la = a.model->forward(w), lb = b.model->forward(w);
    for (size_t t = 0; t + 1 < w.size(); ++t) {
      const int i = t == 0 ? 0 : t < 3 ? 1 : t < 7 ? 2 : 3;
      auto p = probs(la.values.data() + t * V, V), q = probs(lb.values.data() + t * V, V);
      teacher_nll[i] -= std::log(p[static_cast<size_t>(w[t + 1])]);
      nll[i] -= std::log(q[static_cast<size_t>(w[t + 1])]);
      for (int64_t v = 0; v < V; ++v) kl[i] += p[static_cast<size_t>(v)] * std::log(p[static_cast<size_t>(v)] / q[static_cast<size_t>(v)]);
      ++count[i];
    }
  }
  EvalResult r = compare(*a.model, *b.model, ids, opt);
  ASSERT_EQ(r.by_position.size(), 4u);
  const int64_t first[4] = {1, 2, 4, 8}, last[4] = {1, 3, 7, 15};
  int64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    const PositionBucket& bk = r.by_position[static_cast<size_t>(i)];
    EXPECT_EQ(bk.first, first[i]);
    EXPECT_EQ(bk.last, last[i]);
    EXPECT_EQ(bk.tokens, count[i]);
    EXPECT_NEAR(bk.nll, static_cast<double>(nll[i] / count[i]), 1e-6);
    EXPECT_NEAR(bk.teacher_nll, static_cast<double>(teacher_nll[i] / count[i]), 1e-6);
    EXPECT_NEAR(bk.kl, static_cast<double>(kl[i] / count[i]), 1e-6);
    total += bk.tokens;
  }
  EXPECT_EQ(total, r.tokens);
  EvalResult single = evaluate(*b.model, ids, opt);
  ASSERT_EQ(single.by_position.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(single.by_position[static_cast<size_t>(i)].nll, r.by_position[static_cast<size_t>(i)].nll, 1e-9);
}

TEST(Eval, SpreadWindowsAreEvenlyPlacedWholeWindows) {
  auto ops = make_cpu_ops();
  Loaded a = load("qwen2_tiny", *ops);
  const auto V = a.model->config().vocab_size;
  std::vector<int32_t> ids = random_ids(100, static_cast<int32_t>(V), 13);
  // 10 windows of 10 fit; 20 tokens need 3 windows (9 predictions each): windows 0, 3 and 6.
  EvalOptions opt;
  opt.window = 10;
  opt.max_tokens = 20;
  opt.spread = true;
  EvalResult r = evaluate(*a.model, ids, opt);
  EXPECT_EQ(r.tokens, 27);
  long double nll = 0;
  for (size_t start : {0, 30, 60}) {
    std::span<const int32_t> w(ids.data() + start, 10);
    HostTensor l = a.model->forward(w);
    for (size_t t = 0; t + 1 < w.size(); ++t) nll -= std::log(probs(l.values.data() + t * V, V)[static_cast<size_t>(w[t + 1])]);
  }
  EXPECT_NEAR(r.nll, static_cast<double>(nll / 27), 1e-6);
  // More than the text holds: the whole text, as without spread (10 windows of 9 predictions).
  opt.max_tokens = 1000;
  EXPECT_EQ(evaluate(*a.model, ids, opt).tokens, 90);
}

TEST(Eval, TooLittleTextIsAnError) {
  auto ops = make_cpu_ops();
  Loaded a = load("qwen2_tiny", *ops);
  std::vector<int32_t> one = {5};
  EXPECT_THROW(evaluate(*a.model, one, EvalOptions{}), Error);
}
