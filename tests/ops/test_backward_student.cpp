// The reference backward passes of the student time-mixing ops (token_shift, wkv7_prepare,
// wkv7_output) against central finite differences of forwards written here in double precision
// from the formulas of ops.h / SPEC §3, independent of the code under test. Odd shapes (heads of 5
// and 7), resets, value residual on and off, gate and group norm on and off. Tolerance as in
// test_backward.cpp: ~1e-6 relative, the reference computing in double and rounding once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backend/ops.h"
#include "test_backward_util.h"

namespace arwkv {
namespace {

using test::Host;
using test::numeric_grad;
using test::plus;
using test::random_vector;
using test::rel_error;
using test::sigmoid;
using test::to_double;

constexpr double kTol = 1e-6;  // observed: below 1e-7 (fp32 rounding of the stored gradients)

// out[p, b, t] = x + (prev − x)·mix[p]; the carried x_prev afterwards is x[b, T−1]. The objective
// weighs both outputs: L = Σ dout ⊙ out + Σ dcarry ⊙ x[:, T−1].
TEST(BackwardStudent, TokenShift) {
  const int64_t P = 3, B = 2, T = 5, C = 7;
  auto ops = make_reference_ops();
  for (bool with_reset : {false, true}) {
    std::vector<int32_t> rs = {0, 0, 1, 0, 0, 1, 0, 0, 0, 1};  // sequence 1 starts a document at t = 0
    Host x({B, T, C}, random_vector(B * T * C, 1)), x_prev({B, C}, random_vector(B * C, 2)),
        mix({P, C}, random_vector(P * C, 3));
    Host dout({P, B, T, C}, random_vector(P * B * T * C, 4)), dcarry({B, C}, random_vector(B * C, 5));
    Host dx({B, T, C}, std::vector<float>(B * T * C, 7.0f)), dmix({P, C}, random_vector(P * C, 6));
    Host dprev = dcarry, reset({B, T}, rs);
    const std::vector<float> dmix0 = dmix.f;
    ops->token_shift_backward(dx.t(), dprev.t(), dmix.t(), dout.t(), x.t(), x_prev.t(), mix.t(),
                              with_reset ? reset.t() : Tensor{});
    auto xd = to_double(x.f), pd = to_double(x_prev.f), md = to_double(mix.f);
    const auto g = to_double(dout.f), gc = to_double(dcarry.f);
    auto loss = [&] {
      double s = 0.0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t c = 0; c < C; ++c) {
            const double xv = xd[(b * T + t) * C + c];
            double prev = t == 0 ? pd[b * C + c] : xd[(b * T + t - 1) * C + c];
            if (with_reset && rs[b * T + t]) prev = 0.0;
            for (int64_t p = 0; p < P; ++p) s += g[((p * B + b) * T + t) * C + c] * (xv + (prev - xv) * md[p * C + c]);
            if (t == T - 1) s += gc[b * C + c] * xv;
          }
      return s;
    };
    EXPECT_LT(rel_error(dx.f, numeric_grad(xd, loss)), kTol) << "reset " << with_reset;
    EXPECT_LT(rel_error(dprev.f, numeric_grad(pd, loss)), kTol) << "reset " << with_reset;
    EXPECT_LT(rel_error(dmix.f, plus(dmix0, numeric_grad(md, loss))), kTol) << "reset " << with_reset;
  }
}

// The forward of wkv7_prepare in double; L = Σ over its five outputs of a random weight times the output.
struct Prepare {
  int64_t R, C, N;
  bool residual;
  std::vector<double> k, v, wl, al, vf, vl, kk_w, ka;   // inputs
  std::vector<double> gw, ga, gb, gk, gv;                // weights of the outputs w, a, b, k', v'
  double loss() const {
    double s = 0.0;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t h = 0; h < C / N; ++h) {
        double ss = 0.0;
        for (int64_t j = h * N; j < (h + 1) * N; ++j) ss += std::pow(k[r * C + j] * kk_w[j], 2);
        const double norm = std::max(std::sqrt(ss), 1e-12);
        for (int64_t j = h * N; j < (h + 1) * N; ++j) {
          const int64_t i = r * C + j;
          const double kk = k[i] * kk_w[j] / norm, iclr = sigmoid(al[i]);
          s += gw[i] * std::exp(-std::exp(-0.5) * sigmoid(wl[i])) + ga[i] * -kk + gb[i] * kk * iclr;
          s += gk[i] * k[i] * (1.0 + (iclr - 1.0) * ka[j]);
          s += gv[i] * (residual ? v[i] + (vf[i] - v[i]) * sigmoid(vl[i]) : v[i]);
        }
      }
    return s;
  }
};

TEST(BackwardStudent, Wkv7Prepare) {
  const int64_t R = 3, N = 7, C = 2 * N;
  auto ops = make_reference_ops();
  for (bool residual : {true, false}) {
    auto rv = [&](uint64_t seed, float lo = -1, float hi = 1) { return Host({R, C}, random_vector(R * C, seed, lo, hi)); };
    Host k = rv(1), v = rv(2), wl = rv(3, -3, 3), al = rv(4, -3, 3), vf = rv(5), vl = rv(6, -3, 3);
    Host kk_w({C}, random_vector(C, 7, 0.2f, 1.5f)), ka({C}, random_vector(C, 8, 0, 1.5f));
    Host gw = rv(9), ga = rv(10), gb = rv(11), gk = rv(12), gv = rv(13);
    Host out_w = rv(14), out_a = rv(14), out_b = rv(14);  // not read by the backward
    Host dk = gk, dv = gv, dwl = rv(15), dal = rv(16), dvf = rv(17), dvl = rv(18);
    Host dkk({C}, random_vector(C, 19)), dka({C}, random_vector(C, 20));
    const std::vector<float> dvf0 = dvf.f, dkk0 = dkk.f, dka0 = dka.f;
    Wkv7PrepareArgs f{out_w.t(), out_a.t(), out_b.t(), k.t(), v.t(), wl.t(), al.t(),
                      residual ? vf.t() : Tensor{}, residual ? vl.t() : Tensor{}, kk_w.t(), ka.t(), int(N)};
    Wkv7PrepareGrads d{gw.t(), ga.t(), gb.t(), dk.t(), dv.t(), dwl.t(), dal.t(),
                       residual ? dvf.t() : Tensor{}, residual ? dvl.t() : Tensor{}, dkk.t(), dka.t()};
    ops->wkv7_prepare_backward(f, d);

    Prepare p{R, C, N, residual, to_double(k.f), to_double(v.f), to_double(wl.f), to_double(al.f), to_double(vf.f),
              to_double(vl.f), to_double(kk_w.f), to_double(ka.f), to_double(gw.f), to_double(ga.f),
              to_double(gb.f), to_double(gk.f), to_double(gv.f)};
    auto loss = [&] { return p.loss(); };
    const std::string what = residual ? "residual" : "no residual";
    EXPECT_LT(rel_error(dk.f, numeric_grad(p.k, loss)), kTol) << what;
    EXPECT_LT(rel_error(dv.f, numeric_grad(p.v, loss)), kTol) << what;
    EXPECT_LT(rel_error(dwl.f, numeric_grad(p.wl, loss)), kTol) << what;
    EXPECT_LT(rel_error(dal.f, numeric_grad(p.al, loss)), kTol) << what;
    EXPECT_LT(rel_error(dkk.f, plus(dkk0, numeric_grad(p.kk_w, loss))), kTol) << what;
    EXPECT_LT(rel_error(dka.f, plus(dka0, numeric_grad(p.ka, loss))), kTol) << what;
    if (!residual) continue;
    EXPECT_LT(rel_error(dvf.f, plus(dvf0, numeric_grad(p.vf, loss))), kTol);
    EXPECT_LT(rel_error(dvl.f, numeric_grad(p.vl, loss)), kTol);
  }
}

// The forward of wkv7_output in double; L = Σ dout ⊙ out.
struct Output {
  int64_t R, H, N;
  bool norm, gate;
  double eps;
  std::vector<double> y, r, k, v, rk, g, lw, lb, dout;
  double loss() const {
    double s = 0.0;
    const int64_t C = H * N;
    for (int64_t row = 0; row < R; ++row)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t o = row * C + h * N;
        double mean = 0.0, var = 0.0, bonus = 0.0;
        for (int64_t j = 0; j < N; ++j) mean += y[o + j] / N;
        for (int64_t j = 0; j < N; ++j) var += (y[o + j] - mean) * (y[o + j] - mean) / N;
        for (int64_t j = 0; j < N; ++j) bonus += r[o + j] * k[o + j] * rk[h * N + j];
        for (int64_t j = 0; j < N; ++j) {
          double out = norm ? (y[o + j] - mean) / std::sqrt(var + eps) * lw[h * N + j] + lb[h * N + j] : y[o + j];
          out += bonus * v[o + j];
          s += dout[o + j] * (gate ? out * g[o + j] : out);
        }
      }
    return s;
  }
};

TEST(BackwardStudent, Wkv7Output) {
  const int64_t R = 3, H = 2, N = 5, C = H * N;
  const float eps = 64e-5f;
  auto ops = make_reference_ops();
  for (int mode = 0; mode < 4; ++mode) {
    const bool norm = mode & 1, gate = mode & 2;
    auto rv = [&](uint64_t seed) { return Host({R, C}, random_vector(R * C, seed)); };
    Host y = rv(1), r = rv(2), k = rv(3), v = rv(4), g = rv(5), dout = rv(6);
    Host rk({H, N}, random_vector(C, 7)), lw({C}, random_vector(C, 8)), lb({C}, random_vector(C, 9));
    Host dy = dout, dr = rv(10), dk = rv(11), dv = rv(12), dg({R, C}, std::vector<float>(R * C, 7.0f));
    Host drk({H, N}, random_vector(C, 13)), dlw({C}, random_vector(C, 14)), dlb({C}, random_vector(C, 15));
    const std::vector<float> dr0 = dr.f, dk0 = dk.f, dv0 = dv.f, drk0 = drk.f, dlw0 = dlw.f, dlb0 = dlb.f;
    Wkv7OutputGrads d{dy.t(), dr.t(), dk.t(), dv.t(), drk.t(), gate ? dg.t() : Tensor{}, norm ? dlw.t() : Tensor{},
                      norm ? dlb.t() : Tensor{}};
    ops->wkv7_output_backward(d, y.t(), r.t(), k.t(), v.t(), rk.t(), gate ? g.t() : Tensor{},
                              norm ? lw.t() : Tensor{}, norm ? lb.t() : Tensor{}, eps);

    Output o{R, H, N, norm, gate, double{eps}, to_double(y.f), to_double(r.f), to_double(k.f), to_double(v.f),
             to_double(rk.f), to_double(g.f), to_double(lw.f), to_double(lb.f), to_double(dout.f)};
    auto loss = [&] { return o.loss(); };
    const std::string what = "norm " + std::to_string(norm) + " gate " + std::to_string(gate);
    EXPECT_LT(rel_error(dy.f, numeric_grad(o.y, loss)), kTol) << what;
    EXPECT_LT(rel_error(dr.f, plus(dr0, numeric_grad(o.r, loss))), kTol) << what;
    EXPECT_LT(rel_error(dk.f, plus(dk0, numeric_grad(o.k, loss))), kTol) << what;
    EXPECT_LT(rel_error(dv.f, plus(dv0, numeric_grad(o.v, loss))), kTol) << what;
    EXPECT_LT(rel_error(drk.f, plus(drk0, numeric_grad(o.rk, loss))), kTol) << what;
    if (gate) {
      EXPECT_LT(rel_error(dg.f, numeric_grad(o.g, loss)), kTol) << what;
    }
    if (!norm) continue;
    EXPECT_LT(rel_error(dlw.f, plus(dlw0, numeric_grad(o.lw, loss))), kTol) << what;
    EXPECT_LT(rel_error(dlb.f, plus(dlb0, numeric_grad(o.lb, loss))), kTol) << what;
  }
}

}  // namespace
}  // namespace arwkv
