// The fast CPU forms of the student time-mixing ops (see student_ops.h).
#include "backend/cpu/student_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/vec_math.h"

namespace arwkv::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // fewer elements than this stay on one thread

inline float sigmoid_f(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }

}  // namespace

void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) {
  const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
  const float *xp = x.f32(), *mp = mix.f32();
  float *prev = x_prev.f32(), *op = out.f32();
  const int32_t* rs = empty(reset) ? nullptr : reset.i32();
#pragma omp parallel for collapse(2) if (P * B * T * C >= kParallelMin)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = xp + (b * T + t) * C;
      const float* pt = t == 0 ? prev + b * C : xt - C;
      const float keep = rs && rs[b * T + t] ? 0.0f : 1.0f;
      for (int64_t p = 0; p < P; ++p) {
        const float* mu = mp + p * C;
        float* o = op + ((p * B + b) * T + t) * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) o[c] = xt[c] + (keep * pt[c] - xt[c]) * mu[c];
      }
    }
  if (T > 0)
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(prev + b * C, xp + (b * T + T - 1) * C, static_cast<size_t>(C) * sizeof(float));
}

void tanh(Tensor y, Tensor x) {
  const int64_t n = x.numel();
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) yp[i] = std::tanh(xp[i]);
}

void sigmoid(Tensor y, Tensor x) {
  const int64_t n = x.numel();
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) yp[i] = sigmoid_f(xp[i]);
}

// One row: kk per head first (it needs k before the iclr scaling), then the element-wise rest.
static void prepare_row(const Wkv7PrepareArgs& a, int64_t r, float* kk) {
  const int64_t C = a.k.cols(), N = a.head_size, o = r * C;
  const float decay_scale = 0.60653065971263342f;  // e^-0.5
  float *k = a.k.f32() + o, *v = a.v.f32() + o;
  const float *kkw = a.k_k.f32(), *ka = a.k_a.f32(), *wl = a.w_logit.f32() + o, *al = a.a_logit.f32() + o;
  for (int64_t h = 0; h < C / N; ++h) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = h * N; j < (h + 1) * N; ++j) {
      kk[j] = k[j] * kkw[j];
      ss += kk[j] * kk[j];
    }
    const float inv = 1.0f / std::max(std::sqrt(ss), 1e-12f);
#pragma omp simd
    for (int64_t j = h * N; j < (h + 1) * N; ++j) kk[j] *= inv;
  }
  float *w = a.w.f32() + o, *aa = a.a.f32() + o, *b = a.b.f32() + o;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float iclr = sigmoid_f(al[c]);
    w[c] = fast_exp(-decay_scale * sigmoid_f(wl[c]));
    k[c] *= 1.0f + (iclr - 1.0f) * ka[c];
    aa[c] = -kk[c];
    b[c] = kk[c] * iclr;
  }
  if (!empty(a.v_first)) {
    const float *vf = a.v_first.f32() + o, *vl = a.v_logit.f32() + o;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) v[c] += (vf[c] - v[c]) * sigmoid_f(vl[c]);
  }
}

void wkv7_prepare(const Wkv7PrepareArgs& a) {
  const int64_t R = a.k.rows(), C = a.k.cols();
#pragma omp parallel if (R * C >= kParallelMin)
  {
    std::vector<float> kk(static_cast<size_t>(C));
#pragma omp for
    for (int64_t r = 0; r < R; ++r) prepare_row(a, r, kk.data());
  }
}

void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b, float eps) {
  const int64_t R = y.rows(), C = y.cols(), H = r_k.dim(0), N = r_k.dim(1);
  const bool norm = !empty(ln_w), gate = !empty(g);
#pragma omp parallel for collapse(2) if (R * C >= kParallelMin)
  for (int64_t row = 0; row < R; ++row)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t o = row * C + h * N;
      float* yh = y.f32() + o;
      const float *rh = r.f32() + o, *kh = k.f32() + o, *vh = v.f32() + o, *rk = r_k.f32() + h * N;
      if (norm) {
        float mean = 0.0f, var = 0.0f;
#pragma omp simd reduction(+ : mean)
        for (int64_t j = 0; j < N; ++j) mean += yh[j];
        mean /= static_cast<float>(N);
#pragma omp simd reduction(+ : var)
        for (int64_t j = 0; j < N; ++j) var += (yh[j] - mean) * (yh[j] - mean);
        const float inv = 1.0f / std::sqrt(var / static_cast<float>(N) + eps);
        const float *lw = ln_w.f32() + h * N, *lb = ln_b.f32() + h * N;
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) yh[j] = (yh[j] - mean) * inv * lw[j] + lb[j];
      }
      float bonus = 0.0f;
#pragma omp simd reduction(+ : bonus)
      for (int64_t j = 0; j < N; ++j) bonus += rh[j] * kh[j] * rk[j];
      const float* gh = gate ? g.f32() + o : nullptr;
      for (int64_t j = 0; j < N; ++j) {
        const float out = yh[j] + bonus * vh[j];
        yh[j] = gh ? out * gh[j] : out;
      }
    }
}

}  // namespace arwkv::cpu
