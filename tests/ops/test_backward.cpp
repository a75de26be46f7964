// The reference backward passes of the dense ops (matmul, embedding, rmsnorm, glu) and of
// tanh / sigmoid against central finite differences of forwards written here in double precision
// (independent of the code under test). Inputs are fp32 (what the ops take), read exactly as
// doubles by the forwards; the reference computes in double and rounds once when it stores, so
// the gradients agree to ~1e-6 relative (max error over a tensor / its largest value). The
// objective is L = Σ dy ⊙ f(inputs) with a random dy; accumulating gradients start from random
// values, written ones from garbage.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/ref/ops_backward_ref.h"
#include "backend/ops.h"
#include "test_backward_util.h"

namespace arwkv {
namespace {

using test::Host;
using test::numeric_grad;
using test::plus;
using test::random_vector;
using test::rel_error;
using test::to_double;

constexpr double kTol = 1e-6;  // observed: below 1e-7 (fp32 rounding of the stored gradients)

class BackwardRef : public ::testing::Test {
 public:
  std::unique_ptr<Ops> ops = make_reference_ops();
};

TEST_F(BackwardRef, Matmul) {
  const int64_t M = 5, K = 7, N = 3;
  for (bool acc : {false, true}) {
    Host x({M, K}, random_vector(M * K, 1)), w({N, K}, random_vector(N * K, 2)), b({N}, random_vector(N, 3));
    Host dy({M, N}, random_vector(M * N, 4)), dx({M, K}, random_vector(M * K, 5)), dw({N, K}, random_vector(N * K, 6)),
        db({N}, random_vector(N, 7));
    const std::vector<float> dx0 = dx.f, dw0 = dw.f, db0 = db.f;
    ops->matmul_backward(dx.t(), dw.t(), db.t(), dy.t(), x.t(), w.t(), acc);

    auto xd = to_double(x.f), wd = to_double(w.f), bd = to_double(b.f), g = to_double(dy.f);
    auto loss = [&] {
      double s = 0.0;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double y = bd[n];
          for (int64_t k = 0; k < K; ++k) y += xd[m * K + k] * wd[n * K + k];
          s += g[m * N + n] * y;
        }
      return s;
    };
    const auto want_dx = numeric_grad(xd, loss);
    EXPECT_LT(rel_error(dx.f, acc ? plus(dx0, want_dx) : want_dx), kTol) << "accumulate " << acc;
    EXPECT_LT(rel_error(dw.f, plus(dw0, numeric_grad(wd, loss))), kTol);
    EXPECT_LT(rel_error(db.f, plus(db0, numeric_grad(bd, loss))), kTol);
  }
  // Empty gradients are skipped.
  Host x({M, K}, random_vector(M * K, 1)), w({N, K}, random_vector(N * K, 2)), dy({M, N}, random_vector(M * N, 4));
  Host dw({N, K}, std::vector<float>(N * K));
  ops->matmul_backward(Tensor{}, dw.t(), Tensor{}, dy.t(), x.t(), w.t());
  EXPECT_NE(dw.f, std::vector<float>(N * K));
}

TEST_F(BackwardRef, Embedding) {
  const int64_t V = 6, C = 5;
  Host ids({7}, std::vector<int32_t>{4, 0, 5, 4, 4, 2, 0});
  Host dy({7, C}, random_vector(7 * C, 8)), dtable({V, C}, random_vector(V * C, 9));
  const std::vector<float> dt0 = dtable.f;
  ops->embedding_backward(dtable.t(), dy.t(), ids.t());
  auto table = to_double(random_vector(V * C, 10));
  const auto g = to_double(dy.f);
  auto loss = [&] {
    double s = 0.0;
    for (int64_t t = 0; t < 7; ++t)
      for (int64_t c = 0; c < C; ++c) s += g[t * C + c] * table[ids.i[t] * C + c];
    return s;
  };
  EXPECT_LT(rel_error(dtable.f, plus(dt0, numeric_grad(table, loss))), kTol);
  Host bad({1}, std::vector<int32_t>{6});
  EXPECT_THROW(ops->embedding_backward(dtable.t(), Host({1, C}, random_vector(C, 1)).t(), bad.t()), Error);
}

TEST_F(BackwardRef, Rmsnorm) {
  const int64_t R = 4, C = 9;
  const float eps = 1e-5f;
  for (bool acc : {false, true}) {
    Host x({R, C}, random_vector(R * C, 11, -2, 2)), w({C}, random_vector(C, 12));
    Host dy({R, C}, random_vector(R * C, 13)), dx({R, C}, random_vector(R * C, 14)), dw({C}, random_vector(C, 15));
    const std::vector<float> dx0 = dx.f, dw0 = dw.f;
    ops->rmsnorm_backward(dx.t(), dw.t(), dy.t(), x.t(), w.t(), eps, acc);
    auto xd = to_double(x.f), wd = to_double(w.f);
    const auto g = to_double(dy.f);
    auto loss = [&] {
      double s = 0.0;
      for (int64_t r = 0; r < R; ++r) {
        double ss = 0.0;
        for (int64_t c = 0; c < C; ++c) ss += xd[r * C + c] * xd[r * C + c];
        const double inv = 1.0 / std::sqrt(ss / C + double{eps});
        for (int64_t c = 0; c < C; ++c) s += g[r * C + c] * xd[r * C + c] * inv * wd[c];
      }
      return s;
    };
    const auto want_dx = numeric_grad(xd, loss);
    EXPECT_LT(rel_error(dx.f, acc ? plus(dx0, want_dx) : want_dx), kTol) << "accumulate " << acc;
    EXPECT_LT(rel_error(dw.f, plus(dw0, numeric_grad(wd, loss))), kTol);
  }
}

TEST_F(BackwardRef, GatedUnits) {
  const int64_t n = 23;
  // act(x) as the model families define it, written out here: SiLU, and PyTorch's gelu(approximate="tanh").
  auto silu = [](double x) { return x * test::sigmoid(x); };
  auto gelu = [](double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); };
  for (Activation act : {Activation::Silu, Activation::GeluTanh}) {
    SCOPED_TRACE(static_cast<int>(act));
    const auto f = [&](double x) { return act == Activation::Silu ? silu(x) : gelu(x); };
    Host gate({n}, random_vector(n, 16, -6, 6)), up({n}, random_vector(n, 17)), dy({n}, random_vector(n, 18));
    Host y({n}, std::vector<float>(n, 0.0f));
    ops->glu(y.t(), gate.t(), up.t(), act);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y.f[i], f(gate.f[i]) * up.f[i], 1e-6 * (1.0 + std::abs(y.f[i])));
    Host dgate({n}, std::vector<float>(n, 7.0f)), dup({n}, std::vector<float>(n, 7.0f));
    ops->glu_backward(dgate.t(), dup.t(), dy.t(), gate.t(), up.t(), act);
    auto gd = to_double(gate.f), ud = to_double(up.f);
    const auto g = to_double(dy.f);
    auto loss = [&] {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += g[i] * f(gd[i]) * ud[i];
      return s;
    };
    EXPECT_LT(rel_error(dgate.f, numeric_grad(gd, loss)), kTol);
    EXPECT_LT(rel_error(dup.f, numeric_grad(ud, loss)), kTol);
    // In place: the gradients overwrite the inputs.
    ops->glu_backward(gate.t(), up.t(), dy.t(), gate.t(), up.t(), act);
    EXPECT_EQ(gate.f, dgate.f);
    EXPECT_EQ(up.f, dup.f);
  }
  // PyTorch's float64 gelu(approximate="tanh") at a few points.
  const std::pair<double, double> torch_gelu[] = {{-3.0, -0.0036373920817729943}, {-0.5, -0.15428599017485606},
                                                  {0.7, 0.53057013470511671}, {2.5, 2.4849157339100012}};
  for (auto [x, want] : torch_gelu) EXPECT_NEAR(ref::activation(Activation::GeluTanh, x), want, 1e-15) << x;
}

// tanh and sigmoid take the forward's output y; dx may alias dy.
TEST_F(BackwardRef, TanhSigmoid) {
  const int64_t n = 19;
  for (bool is_tanh : {true, false}) {
    auto f = [&](double v) { return is_tanh ? std::tanh(v) : test::sigmoid(v); };
    auto xd = to_double(random_vector(n, 19, -4, 4));
    std::vector<float> yv(n);
    for (int64_t i = 0; i < n; ++i) yv[i] = static_cast<float>(f(xd[i]));
    Host y({n}, yv), dy({n}, random_vector(n, 20));
    const auto g = to_double(dy.f);
    if (is_tanh)
      ops->tanh_backward(dy.t(), dy.t(), y.t());
    else
      ops->sigmoid_backward(dy.t(), dy.t(), y.t());
    auto loss = [&] {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += g[i] * f(xd[i]);
      return s;
    };
    EXPECT_LT(rel_error(dy.f, numeric_grad(xd, loss)), kTol) << (is_tanh ? "tanh" : "sigmoid");
  }
}

TEST_F(BackwardRef, ShapeMismatchThrows) {
  Host x({5, 7}, random_vector(35, 1)), w({3, 7}, random_vector(21, 2)), dy({5, 3}, random_vector(15, 3));
  Host dx_bad({5, 6}, random_vector(30, 4)), db_bad({4}, random_vector(4, 5));
  EXPECT_THROW(ops->matmul_backward(dx_bad.t(), Tensor{}, Tensor{}, dy.t(), x.t(), w.t()), Error);
  EXPECT_THROW(ops->matmul_backward(Tensor{}, Tensor{}, db_bad.t(), dy.t(), x.t(), w.t()), Error);
  EXPECT_THROW(ops->rmsnorm_backward(dx_bad.t(), Tensor{}, x.t(), x.t(), Host({7}, random_vector(7, 6)).t(), 1e-5f),
               Error);
}

}  // namespace
}  // namespace arwkv
