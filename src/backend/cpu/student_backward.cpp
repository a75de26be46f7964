// The fast CPU forms of the student ops' backward passes (see student_backward.h). Parameter
// gradients are summed per thread and the threads' sums added in thread order afterwards: no
// atomics, and the same result on every run for a given thread count.
#include "backend/cpu/student_backward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/vec_math.h"

namespace arwkv::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // fewer elements than this stay on one thread

inline float sigmoid_f(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }
int threads_for(int64_t work) { return omp_in_parallel() || work < kParallelMin ? 1 : omp_get_max_threads(); }

// Per-thread partial sums of a parameter gradient of n values (zero-initialised).
class Partials {
 public:
  Partials(int n_threads, int64_t n) : n_(n), sums_(static_cast<size_t>(n_threads * n)) {}
  float* of(int thread) { return sums_.data() + thread * n_; }
  void add_to(const Tensor& dst) const {
    if (empty(dst)) return;
    float* out = dst.f32();
    for (int64_t i = 0; i < n_; ++i) {
      float s = 0.0f;
      for (size_t o = static_cast<size_t>(i); o < sums_.size(); o += static_cast<size_t>(n_)) s += sums_[o];
      out[i] += s;
    }
  }

 private:
  int64_t n_;
  std::vector<float> sums_;
};

}  // namespace

void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                          Tensor reset) {
  const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
  if (T == 0) return;
  const float *xp = x.f32(), *mp = mix.f32(), *g = dout.f32(), *prev = x_prev.f32();
  const int32_t* rs = empty(reset) ? nullptr : reset.i32();
  float *dxp = dx.f32(), *dprev = empty(dx_prev) ? nullptr : dx_prev.f32();
  const bool want_dmix = !empty(dmix);
  const int nt = threads_for(P * B * T * C);
  Partials dmix_part(nt, want_dmix ? P * C : 0);
#pragma omp parallel for collapse(2) num_threads(nt)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = xp + (b * T + t) * C;
      const float* pt = t == 0 ? prev + b * C : xt - C;
      const float keep = rs && rs[b * T + t] ? 0.0f : 1.0f;
      const bool next_sees = t + 1 < T && !(rs && rs[b * T + t + 1]);
      float* d = dxp + (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) d[c] = t == T - 1 && dprev ? dprev[b * C + c] : 0.0f;
      float* part = want_dmix ? dmix_part.of(omp_get_thread_num()) : nullptr;
      for (int64_t p = 0; p < P; ++p) {
        const float *go = g + ((p * B + b) * T + t) * C, *mu = mp + p * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) d[c] += go[c] * (1.0f - mu[c]);
        if (next_sees) {
          const float* gn = go + C;  // dout[p, b, t + 1]
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) d[c] += gn[c] * mu[c];
        }
        if (!part) continue;
        float* pm = part + p * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) pm[c] += go[c] * (keep * pt[c] - xt[c]);
      }
    }
  dmix_part.add_to(dmix);
  for (int64_t b = 0; b < B && dprev; ++b) {
    const bool sees = !(rs && rs[b * T]);
    for (int64_t c = 0; c < C; ++c) {
      float s = 0.0f;
      for (int64_t p = 0; p < P && sees; ++p) s += g[(p * B + b) * T * C + c] * mp[p * C + c];
      dprev[b * C + c] = s;
    }
  }
}

void tanh_backward(Tensor dx, Tensor dy, Tensor y) {
  const int64_t n = y.numel();
  const float *d = dy.f32(), *yp = y.f32();
  float* out = dx.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = d[i] * (1.0f - yp[i] * yp[i]);
}

void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) {
  const int64_t n = y.numel();
  const float *d = dy.f32(), *yp = y.f32();
  float* out = dx.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = d[i] * yp[i] * (1.0f - yp[i]);
}

// One row of wkv7_prepare_backward (formulas at the reference, cpu/ref/student_backward_ref.cpp):
// per head kk and the gradient dn through the L2 normalisation first, then the element-wise rest.
static void prepare_backward_row(const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d, int64_t r, float* kk, float* dn,
                                 float* dkk_part, float* dka_part) {
  const int64_t C = f.k.cols(), N = f.head_size, o = r * C;
  const float decay_scale = 0.60653065971263342f;  // e^-0.5
  const float *k = f.k.f32() + o, *kkw = f.k_k.f32(), *ka = f.k_a.f32();
  const float *wl = f.w_logit.f32() + o, *al = f.a_logit.f32() + o;
  const float *gw = d.dw.f32() + o, *ga = d.da.f32() + o, *gb = d.db.f32() + o;
  for (int64_t h = 0; h < C / N; ++h) {
    float ss = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = h * N; j < (h + 1) * N; ++j) ss += (k[j] * kkw[j]) * (k[j] * kkw[j]);
    const float norm = std::max(std::sqrt(ss), 1e-12f), inv = 1.0f / norm;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = h * N; j < (h + 1) * N; ++j) {
      kk[j] = k[j] * kkw[j] * inv;
      dn[j] = -ga[j] + gb[j] * sigmoid_f(al[j]);
      dot += kk[j] * dn[j];
    }
    if (norm <= 1e-12f) dot = 0.0f;
#pragma omp simd
    for (int64_t j = h * N; j < (h + 1) * N; ++j) dn[j] = (dn[j] - kk[j] * dot) * inv;
  }
  float *dk = d.dk.f32() + o, *dwl = d.dw_logit.f32() + o, *dal = d.da_logit.f32() + o;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float iclr = sigmoid_f(al[c]), sw = sigmoid_f(wl[c]), dk1 = dk[c];
    const float w = fast_exp(-decay_scale * sw);
    dwl[c] = gw[c] * w * -decay_scale * sw * (1.0f - sw);
    dal[c] = (gb[c] * kk[c] + dk1 * k[c] * ka[c]) * iclr * (1.0f - iclr);
    dk[c] = dk1 * (1.0f + (iclr - 1.0f) * ka[c]) + dn[c] * kkw[c];
    dkk_part[c] += dn[c] * k[c];
    dka_part[c] += dk1 * k[c] * (iclr - 1.0f);
  }
  if (empty(f.v_first)) return;
  const float *v = f.v.f32() + o, *vf = f.v_first.f32() + o, *vl = f.v_logit.f32() + o;
  float *dv = d.dv.f32() + o, *dvf = d.dv_first.f32() + o, *dvl = d.dv_logit.f32() + o;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    const float s = sigmoid_f(vl[c]), dv1 = dv[c];
    dv[c] = dv1 * (1.0f - s);
    dvf[c] += dv1 * s;
    dvl[c] = dv1 * (vf[c] - v[c]) * s * (1.0f - s);
  }
}

void wkv7_prepare_backward(const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d) {
  const int64_t R = f.k.rows(), C = f.k.cols();
  const int nt = threads_for(R * C);
  Partials dkk(nt, C), dka(nt, C);
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> kk(static_cast<size_t>(C)), dn(static_cast<size_t>(C));
    const int id = omp_get_thread_num();
#pragma omp for
    for (int64_t r = 0; r < R; ++r) prepare_backward_row(f, d, r, kk.data(), dn.data(), dkk.of(id), dka.of(id));
  }
  dkk.add_to(d.dk_k);
  dka.add_to(d.dk_a);
}

// One head of one row of wkv7_output_backward (formulas at the reference); yhat and dy2 hold N.
static void output_backward_head(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, const float* rk,
                                 Tensor g, const float* lw, const float* lb, float eps, int64_t o, int64_t N,
                                 float* yhat, float* dy2, float* drk, float* dlw, float* dlb) {
  const float *yh = y.f32() + o, *rh = r.f32() + o, *kh = k.f32() + o, *vh = v.f32() + o;
  const float* gh = empty(g) ? nullptr : g.f32() + o;
  float* dyh = d.dy.f32() + o;
  float mean = 0.0f, var = 0.0f, inv = 1.0f, beta = 0.0f, dbeta = 0.0f;
  if (lw) {
#pragma omp simd reduction(+ : mean)
    for (int64_t j = 0; j < N; ++j) mean += yh[j];
    mean /= static_cast<float>(N);
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < N; ++j) var += (yh[j] - mean) * (yh[j] - mean);
    inv = 1.0f / std::sqrt(var / static_cast<float>(N) + eps);
  }
#pragma omp simd reduction(+ : beta)
  for (int64_t j = 0; j < N; ++j) {
    yhat[j] = (yh[j] - mean) * inv;
    beta += rh[j] * kh[j] * rk[j];
  }
  float* dg = gh ? d.dg.f32() + o : nullptr;
#pragma omp simd reduction(+ : dbeta)
  for (int64_t j = 0; j < N; ++j) {
    const float y1 = lw ? yhat[j] * lw[j] + lb[j] : yhat[j];
    dy2[j] = gh ? dyh[j] * gh[j] : dyh[j];
    if (dg) dg[j] = dyh[j] * (y1 + beta * vh[j]);
    dbeta += dy2[j] * vh[j];
  }
  float *dr = d.dr.f32() + o, *dk = d.dk.f32() + o, *dv = d.dv.f32() + o;
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) {
    dv[j] += beta * dy2[j];
    dr[j] += dbeta * kh[j] * rk[j];
    dk[j] += dbeta * rh[j] * rk[j];
    drk[j] += dbeta * rh[j] * kh[j];
  }
  if (!lw) {
    std::copy(dy2, dy2 + N, dyh);
    return;
  }
  float mean_d = 0.0f, mean_dy = 0.0f;
#pragma omp simd reduction(+ : mean_d, mean_dy)
  for (int64_t j = 0; j < N; ++j) {
    dlw[j] += dy2[j] * yhat[j];
    dlb[j] += dy2[j];
    dy2[j] *= lw[j];
    mean_d += dy2[j];
    mean_dy += dy2[j] * yhat[j];
  }
  mean_d /= static_cast<float>(N);
  mean_dy /= static_cast<float>(N);
#pragma omp simd
  for (int64_t j = 0; j < N; ++j) dyh[j] = (dy2[j] - mean_d - yhat[j] * mean_dy) * inv;
}

void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                          Tensor ln_w, Tensor ln_b, float eps) {
  const int64_t R = y.rows(), C = y.cols(), H = r_k.dim(0), N = r_k.dim(1);
  const bool norm = !empty(ln_w);
  const int nt = threads_for(R * C);
  Partials drk(nt, C), dlw(nt, norm ? C : 0), dlb(nt, norm ? C : 0);
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> yhat(static_cast<size_t>(N)), dy2(static_cast<size_t>(N));
    const int id = omp_get_thread_num();
#pragma omp for collapse(2)
    for (int64_t row = 0; row < R; ++row)
      for (int64_t h = 0; h < H; ++h)
        output_backward_head(d, y, r, k, v, r_k.f32() + h * N, g, norm ? ln_w.f32() + h * N : nullptr,
                             norm ? ln_b.f32() + h * N : nullptr, eps, row * C + h * N, N, yhat.data(), dy2.data(),
                             drk.of(id) + h * N, norm ? dlw.of(id) + h * N : nullptr,
                             norm ? dlb.of(id) + h * N : nullptr);
  }
  drk.add_to(d.dr_k);
  dlw.add_to(d.dln_w);
  dlb.add_to(d.dln_b);
}

}  // namespace arwkv::cpu
