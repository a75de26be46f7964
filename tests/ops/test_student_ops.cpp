// The student time-mixing ops (token_shift, tanh, sigmoid, wkv7_prepare, wkv7_output): the CPU
// backend against the scalar reference on seeded random inputs with odd shapes, the reference
// against values written out by hand, and the argument checks.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/ops.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::max_rel_error;
using test::random_vector;

constexpr double kTol = 2e-6;

// Host data for one tensor plus a view of it (CPU backends read host memory directly).
struct Host {
  std::vector<float> v;
  Shape shape;
  Host(Shape s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) : v(random_vector(s.numel(), seed, lo, hi)), shape(s) {}
  Tensor t() { return Tensor{v.data(), shape}; }
};

struct I32 {
  std::vector<int32_t> v;
  Tensor t() { return Tensor{v.data(), Shape{static_cast<int64_t>(v.size())}, DType::I32}; }
};

class StudentOps : public ::testing::Test {
 protected:
  std::unique_ptr<Ops> ref = make_reference_ops(), cpu = make_cpu_ops();
};

TEST_F(StudentOps, TokenShiftMatchesHandWrittenAndCpu) {
  const int64_t P = 5, B = 3, T = 7, C = 37;
  Host x({B, T, C}, 1), prev({B, C}, 2), mix({P, C}, 3, 0.0f, 1.0f);
  I32 reset{std::vector<int32_t>(B * T, 0)};
  reset.v[1 * T + 4] = 1;  // sequence 1 starts a document at t = 4
  reset.v[2 * T + 0] = 1;  // sequence 2 ignores its carried x_prev
  Host out_ref({P, B, T, C}, 4), out_cpu({P, B, T, C}, 5);
  Host prev_ref = prev, prev_cpu = prev;
  Tensor rs = reset.t().reshape({B, T});
  ref->token_shift(out_ref.t(), x.t(), prev_ref.t(), mix.t(), rs);
  cpu->token_shift(out_cpu.t(), x.t(), prev_cpu.t(), mix.t(), rs);
  EXPECT_LT(max_rel_error(out_cpu.v, out_ref.v), kTol);
  EXPECT_EQ(prev_cpu.v, prev_ref.v);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t p : {0, 4})
        for (int64_t c : {0, 36}) {
          const float xv = x.v[(b * T + t) * C + c];
          float before = t == 0 ? prev.v[b * C + c] : x.v[(b * T + t - 1) * C + c];
          if (reset.v[b * T + t]) before = 0.0f;
          EXPECT_NEAR(out_ref.v[((p * B + b) * T + t) * C + c], xv + (before - xv) * mix.v[p * C + c], 1e-6);
        }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(prev_ref.v[b * C + c], x.v[(b * T + T - 1) * C + c]);
  // Without resets, and in two pieces through x_prev, equals one pass.
  Host p1 = prev, p2 = prev, whole({P, B, T, C}, 6), a({P, B, 3, C}, 7), b({P, B, T - 3, C}, 8);
  cpu->token_shift(whole.t(), x.t(), p1.t(), mix.t(), Tensor{});
  std::vector<float> x0, x1;
  for (int64_t s = 0; s < B; ++s) {
    x0.insert(x0.end(), x.v.begin() + s * T * C, x.v.begin() + (s * T + 3) * C);
    x1.insert(x1.end(), x.v.begin() + (s * T + 3) * C, x.v.begin() + (s + 1) * T * C);
  }
  cpu->token_shift(a.t(), Tensor{x0.data(), {B, 3, C}}, p2.t(), mix.t(), Tensor{});
  cpu->token_shift(b.t(), Tensor{x1.data(), {B, T - 3, C}}, p2.t(), mix.t(), Tensor{});
  for (int64_t p = 0; p < P; ++p)
    for (int64_t s = 0; s < B; ++s)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const float got = t < 3 ? a.v[((p * B + s) * 3 + t) * C + c] : b.v[((p * B + s) * (T - 3) + t - 3) * C + c];
          ASSERT_EQ(got, whole.v[((p * B + s) * T + t) * C + c]);
        }
}

TEST_F(StudentOps, TanhAndSigmoid) {
  Host x({13, 29}, 11, -9.0f, 9.0f), y1({13, 29}, 12), y2({13, 29}, 13);
  ref->tanh(y1.t(), x.t());
  cpu->tanh(y2.t(), x.t());
  EXPECT_LT(max_rel_error(y2.v, y1.v), kTol);
  EXPECT_NEAR(y1.v[5], std::tanh(x.v[5]), 1e-7);
  ref->sigmoid(y1.t(), x.t());
  cpu->sigmoid(y2.t(), x.t());
  EXPECT_LT(max_rel_error(y2.v, y1.v), kTol);
  EXPECT_NEAR(y1.v[7], 1.0 / (1.0 + std::exp(-double{x.v[7]})), 1e-7);
  cpu->sigmoid(x.t(), x.t());  // in place
  EXPECT_EQ(x.v, y2.v);
}

struct PrepareInputs {
  Host w, a, b, k, v, w_logit, a_logit, v_first, v_logit, k_k, k_a;
  PrepareInputs(int64_t R, int64_t C, uint64_t s)
      : w({R, C}, s), a({R, C}, s + 1), b({R, C}, s + 2), k({R, C}, s + 3, -2, 2), v({R, C}, s + 4),
        w_logit({R, C}, s + 5, -8, 6), a_logit({R, C}, s + 6, -3, 3), v_first({R, C}, s + 7), v_logit({R, C}, s + 8, -3, 3),
        k_k({C}, s + 9, 0.2f, 1.2f), k_a({C}, s + 10, 0.0f, 1.0f) {}
  Wkv7PrepareArgs args(bool residual, int N) {
    return {.w = w.t(), .a = a.t(), .b = b.t(), .k = k.t(), .v = v.t(), .w_logit = w_logit.t(), .a_logit = a_logit.t(),
            .v_first = residual ? v_first.t() : Tensor{}, .v_logit = residual ? v_logit.t() : Tensor{},
            .k_k = k_k.t(), .k_a = k_a.t(), .head_size = N};
  }
};

TEST_F(StudentOps, Wkv7PrepareMatchesHandWrittenAndCpu) {
  const int64_t R = 5, N = 64, C = 3 * N;
  for (bool residual : {false, true}) {
    PrepareInputs r(R, C, 20), c(R, C, 20), orig(R, C, 20);
    ref->wkv7_prepare(r.args(residual, N));
    cpu->wkv7_prepare(c.args(residual, N));
    for (auto [got, want] : {std::pair{&c.w, &r.w}, {&c.a, &r.a}, {&c.b, &r.b}, {&c.k, &r.k}, {&c.v, &r.v}})
      EXPECT_LT(max_rel_error(got->v, want->v), kTol) << "residual " << residual;
    // Row 3, head 1 by hand.
    const int64_t row = 3, h = 1;
    double ss = 0.0;
    for (int64_t j = h * N; j < (h + 1) * N; ++j) ss += std::pow(double{orig.k.v[row * C + j]} * orig.k_k.v[j], 2);
    for (int64_t j = h * N; j < (h + 1) * N; j += 9) {
      const size_t i = static_cast<size_t>(row * C + j);
      const double iclr = 1.0 / (1.0 + std::exp(-double{orig.a_logit.v[i]}));
      const double kk = orig.k.v[i] * orig.k_k.v[j] / std::sqrt(ss);
      EXPECT_NEAR(r.w.v[i], std::exp(-std::exp(-0.5) / (1.0 + std::exp(-double{orig.w_logit.v[i]}))), 1e-6);
      EXPECT_NEAR(r.a.v[i], -kk, 1e-6);
      EXPECT_NEAR(r.b.v[i], kk * iclr, 1e-6);
      EXPECT_NEAR(r.k.v[i], orig.k.v[i] * (1.0 + (iclr - 1.0) * orig.k_a.v[j]), 1e-6);
      const double mixv = 1.0 / (1.0 + std::exp(-double{orig.v_logit.v[i]}));
      EXPECT_NEAR(r.v.v[i], residual ? orig.v.v[i] + (orig.v_first.v[i] - orig.v.v[i]) * mixv : orig.v.v[i], 1e-6);
    }
  }
}

TEST_F(StudentOps, Wkv7OutputMatchesHandWrittenAndCpu) {
  const int64_t R = 7, H = 3, N = 64, C = H * N;
  for (int variant = 0; variant < 4; ++variant) {
    const bool gate = variant & 1, norm = variant & 2;
    Host y({R, C}, 30, -3, 3), r({R, C}, 31), k({R, C}, 32), v({R, C}, 33), r_k({H, N}, 34), g({R, C}, 35);
    Host ln_w({C}, 36, 0.5f, 1.5f), ln_b({C}, 37, -0.2f, 0.2f);
    Host y_ref = y, y_cpu = y;
    const Tensor gt = gate ? g.t() : Tensor{}, lw = norm ? ln_w.t() : Tensor{}, lb = norm ? ln_b.t() : Tensor{};
    ref->wkv7_output(y_ref.t(), r.t(), k.t(), v.t(), r_k.t(), gt, lw, lb, 64e-5f);
    cpu->wkv7_output(y_cpu.t(), r.t(), k.t(), v.t(), r_k.t(), gt, lw, lb, 64e-5f);
    EXPECT_LT(max_rel_error(y_cpu.v, y_ref.v), kTol) << "variant " << variant;
    const int64_t row = 4, h = 2, o = row * C + h * N;
    double mean = 0.0, var = 0.0, bonus = 0.0;
    for (int64_t j = 0; j < N; ++j) mean += y.v[o + j] / double(N);
    for (int64_t j = 0; j < N; ++j) var += std::pow(y.v[o + j] - mean, 2) / double(N);
    for (int64_t j = 0; j < N; ++j) bonus += double{r.v[o + j]} * k.v[o + j] * r_k.v[h * N + j];
    for (int64_t j = 0; j < N; j += 7) {
      double want = y.v[o + j];
      if (norm) want = (want - mean) / std::sqrt(var + 64e-5) * ln_w.v[h * N + j] + ln_b.v[h * N + j];
      want += bonus * v.v[o + j];
      if (gate) want *= g.v[o + j];
      EXPECT_NEAR(y_ref.v[o + j], want, 1e-5);
    }
  }
}

TEST_F(StudentOps, ArgumentChecks) {
  Host x({2, 3, 64}, 1), prev({2, 64}, 2), mix({5, 64}, 3), out({5, 2, 3, 64}, 4), bad({5, 2, 3, 63}, 5);
  for (Ops* ops : {ref.get(), cpu.get()}) {
    EXPECT_THROW(ops->token_shift(bad.t(), x.t(), prev.t(), mix.t(), Tensor{}), Error);
    EXPECT_THROW(ops->token_shift(out.t(), x.t().reshape({6, 64}), prev.t(), mix.t(), Tensor{}), Error);
    PrepareInputs p(3, 128, 40);
    Wkv7PrepareArgs a = p.args(true, 48);
    EXPECT_THROW(ops->wkv7_prepare(a), Error);  // 128 channels are not heads of 48
    a = p.args(true, 64);
    a.v_logit = Tensor{};
    EXPECT_THROW(ops->wkv7_prepare(a), Error);  // v_first without v_logit
    Host y({3, 128}, 6), rk({3, 64}, 7);
    EXPECT_THROW(ops->wkv7_output(y.t(), y.t(), y.t(), y.t(), rk.t(), Tensor{}, Tensor{}, Tensor{}, 1e-5f), Error);
  }
}

}  // namespace
}  // namespace arwkv
