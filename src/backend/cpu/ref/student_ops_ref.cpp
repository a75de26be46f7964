// The scalar reference of the student time-mixing ops (see student_ops_ref.h).
#include "backend/cpu/ref/student_ops_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace arwkv::ref {
namespace {

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }

}  // namespace

void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) {
  const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
  const float *xp = x.f32(), *mp = mix.f32();
  float *prev = x_prev.f32(), *op = out.f32();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const bool rs = !empty(reset) && reset.i32()[b * T + t] != 0;
      const float* xt = xp + (b * T + t) * C;
      const float* pt = t == 0 ? prev + b * C : xt - C;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) {
          const double before = rs ? 0.0 : pt[c];
          op[((p * B + b) * T + t) * C + c] = static_cast<float>(xt[c] + (before - xt[c]) * mp[p * C + c]);
        }
    }
    if (T > 0)
      for (int64_t c = 0; c < C; ++c) prev[b * C + c] = xp[(b * T + T - 1) * C + c];
  }
}

void tanh(Tensor y, Tensor x) {
  for (int64_t i = 0; i < x.numel(); ++i) y.f32()[i] = static_cast<float>(std::tanh(double{x.f32()[i]}));
}

void sigmoid(Tensor y, Tensor x) {
  for (int64_t i = 0; i < x.numel(); ++i) y.f32()[i] = static_cast<float>(sigmoid_d(x.f32()[i]));
}

void wkv7_prepare(const Wkv7PrepareArgs& a) {
  const int64_t R = a.k.rows(), C = a.k.cols(), N = a.head_size;
  const double decay_scale = std::exp(-0.5);
  std::vector<double> kk(static_cast<size_t>(C));
  for (int64_t r = 0; r < R; ++r) {
    auto at = [&](const Tensor& t, int64_t c) -> float& { return t.f32()[r * C + c]; };
    for (int64_t c = 0; c < C; ++c) kk[c] = double{at(a.k, c)} * a.k_k.f32()[c];
    for (int64_t h = 0; h < C / N; ++h) {
      double ss = 0.0;
      for (int64_t j = 0; j < N; ++j) ss += kk[h * N + j] * kk[h * N + j];
      const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
      for (int64_t j = 0; j < N; ++j) kk[h * N + j] *= inv;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double iclr = sigmoid_d(at(a.a_logit, c));
      at(a.w, c) = static_cast<float>(std::exp(-decay_scale * sigmoid_d(at(a.w_logit, c))));
      if (!empty(a.v_first)) {
        const double v = at(a.v, c);
        at(a.v, c) = static_cast<float>(v + (at(a.v_first, c) - v) * sigmoid_d(at(a.v_logit, c)));
      }
      at(a.k, c) = static_cast<float>(at(a.k, c) * (1.0 + (iclr - 1.0) * a.k_a.f32()[c]));
      at(a.a, c) = static_cast<float>(-kk[c]);
      at(a.b, c) = static_cast<float>(kk[c] * iclr);
    }
  }
}

void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b, float eps) {
  const int64_t R = y.rows(), C = y.cols(), H = r_k.dim(0), N = r_k.dim(1);
  for (int64_t row = 0; row < R; ++row)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t base = row * C + h * N;
      float* yh = y.f32() + base;
      if (!empty(ln_w)) {
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < N; ++j) mean += yh[j];
        mean /= static_cast<double>(N);
        for (int64_t j = 0; j < N; ++j) var += (yh[j] - mean) * (yh[j] - mean);
        const double inv = 1.0 / std::sqrt(var / static_cast<double>(N) + eps);
        for (int64_t j = 0; j < N; ++j)
          yh[j] = static_cast<float>((yh[j] - mean) * inv * ln_w.f32()[h * N + j] + ln_b.f32()[h * N + j]);
      }
      double bonus = 0.0;
      for (int64_t j = 0; j < N; ++j) bonus += double{r.f32()[base + j]} * k.f32()[base + j] * r_k.f32()[h * N + j];
      for (int64_t j = 0; j < N; ++j) {
        const double out = yh[j] + bonus * v.f32()[base + j];
        yh[j] = static_cast<float>(empty(g) ? out : out * g.f32()[base + j]);
      }
    }
}

}  // namespace arwkv::ref
