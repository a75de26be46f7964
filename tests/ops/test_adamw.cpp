// The optimiser ops on every backend: AdamW against two steps worked out by hand from the formula
// (decoupled weight decay, bias correction), sum_squares and scale against direct sums, and the
// fast backends against the reference on a long vector (the threaded path).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "backend/ops.h"
#include "test_backward_util.h"

namespace arwkv {
namespace {

using test::DevTensor;
using test::fetch;
using test::random_vector;

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
};

std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{
      {"reference", make_reference_ops}, {"cpu", make_cpu_ops}, {"cuda_emulated", make_cuda_emulated_ops}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops});
  return out;
}

class AdamWTest : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ops = GetParam().make();
};

// lr 0.1, β 0.9 / 0.95, eps 1e-8, weight decay 0.1; one parameter p = 2 with gradients 0.5 then −1.
// Step 1: p ← 2·(1 − 0.01) = 1.98; m = 0.05, v = 0.0125; m̂ = 0.05/0.1 = 0.5, v̂ = 0.0125/0.05 = 0.25;
//         p ← 1.98 − 0.1·0.5/(0.5 + 1e-8) = 1.88 (+ 2e-9).
// Step 2: p ← 1.88·0.99 = 1.8612; m = 0.045 − 0.1 = −0.055, v = 0.011875 + 0.05 = 0.061875;
//         m̂ = −0.055/0.19 = −0.2894737, v̂ = 0.061875/0.0975 = 0.6346154, sqrt 0.7966275;
//         p ← 1.8612 + 0.1·0.2894737/0.7966275 = 1.8975374.
// A second parameter with weight decay off shows the decay is decoupled: with g = 0 throughout, it
// stays where it is (plain Adam with L2 in the gradient would move it).
TEST_P(AdamWTest, TwoStepsByHand) {
  std::vector<float> p = {2.0f, 3.0f}, zeros = {0.0f, 0.0f};
  DevTensor param(*ops, {2}, p.data()), grad(*ops, {2}, nullptr), m(*ops, {2}, zeros.data()), v(*ops, {2}, zeros.data());
  const float g1[] = {0.5f, 0.0f}, g2[] = {-1.0f, 0.0f};
  ops->upload(grad.t, g1);
  ops->adamw_step(param.t, grad.t, m.t, v.t, 0.1f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
  std::vector<float> after1 = fetch(*ops, param.t);
  EXPECT_NEAR(after1[0], 1.88, 1e-6);
  EXPECT_NEAR(fetch(*ops, m.t)[0], 0.05, 1e-7);
  EXPECT_NEAR(fetch(*ops, v.t)[0], 0.0125, 1e-8);
  ops->upload(grad.t, g2);
  ops->adamw_step(param.t, grad.t, m.t, v.t, 0.1f, 0.9f, 0.95f, 1e-8f, 0.1f, 2);
  const std::vector<float> after2 = fetch(*ops, param.t);
  EXPECT_NEAR(after2[0], 1.8975374, 1e-6);
  EXPECT_NEAR(fetch(*ops, m.t)[0], -0.055, 1e-7);
  EXPECT_NEAR(fetch(*ops, v.t)[0], 0.061875, 1e-7);
  EXPECT_NEAR(after1[1], 3.0 * 0.99, 1e-6);  // decay alone
  EXPECT_NEAR(after2[1], 3.0 * 0.99 * 0.99, 1e-6);
  EXPECT_THROW(ops->adamw_step(param.t, grad.t, m.t, v.t, 0.1f, 0.9f, 0.95f, 1e-8f, 0.1f, 0), Error);
}

TEST_P(AdamWTest, SumSquaresAndScale) {
  const int64_t n = 100003;
  auto x = random_vector(n, 1);
  double want = 0.0;
  for (float e : x) want += double{e} * e;
  const float start = 2.5f;
  DevTensor xt(*ops, {n}, x.data()), acc(*ops, {1}, &start);
  ops->sum_squares(acc.t, xt.t);
  ops->sum_squares(acc.t, xt.t);  // accumulates
  EXPECT_NEAR(fetch(*ops, acc.t)[0], 2.5 + 2 * want, 1e-6 * want);
  ops->scale(xt.t, -0.375f);
  const auto y = fetch(*ops, xt.t);
  for (int64_t i = 0; i < n; i += 997) EXPECT_EQ(y[i], x[i] * -0.375f);
  DevTensor two(*ops, {2}, nullptr);
  EXPECT_THROW(ops->sum_squares(two.t, xt.t), Error);
}

TEST_P(AdamWTest, AgainstReferenceOnLongVector) {
  auto ref = make_reference_ops();
  const int64_t n = 70001;
  auto p = random_vector(n, 2), g = random_vector(n, 3), m = random_vector(n, 4, -0.1f, 0.1f),
       v = random_vector(n, 5, 0.0f, 0.01f);
  std::vector<float> res[2][3];
  Ops* both[2] = {ref.get(), ops.get()};
  for (int b = 0; b < 2; ++b) {
    DevTensor pt(*both[b], {n}, p.data()), gt(*both[b], {n}, g.data()), mt(*both[b], {n}, m.data()),
        vt(*both[b], {n}, v.data());
    for (int64_t step = 7; step < 10; ++step)
      both[b]->adamw_step(pt.t, gt.t, mt.t, vt.t, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.01f, step);
    res[b][0] = fetch(*both[b], pt.t), res[b][1] = fetch(*both[b], mt.t), res[b][2] = fetch(*both[b], vt.t);
  }
  for (int i = 0; i < 3; ++i) EXPECT_LT(test::max_rel_error(res[1][i], res[0][i]), 1e-5) << "tensor " << i;
}

INSTANTIATE_TEST_SUITE_P(Backends, AdamWTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
