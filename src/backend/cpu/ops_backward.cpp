// The fast CPU forms of the dense ops' backward passes (see ops_backward.h). Parameter gradients
// are reduced over rows by threads that each own a block of columns: no atomics, and the same sum
// order on every run.
#include "backend/cpu/ops_backward.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/compact.h"
#include "backend/cpu/vec_math.h"

namespace arwkv::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // fewer elements than this stay on one thread

bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }

int threads_for(int64_t work) { return omp_in_parallel() || work < kParallelMin ? 1 : omp_get_max_threads(); }

// The part [begin, end) of n items that thread id of n_thr takes, in steps of `align`.
std::pair<int64_t, int64_t> share(int64_t n, int id, int n_thr, int64_t align = 1) {
  const int64_t step = ((n + n_thr - 1) / n_thr + align - 1) / align * align;
  const int64_t b = std::min(n, id * step);
  return {b, std::min(n, b + step)};
}

// c[M, N] = op(a)[M, K]·op(b)[K, N] + beta·c (row-major; op transposes when ta / tb), with the
// longer of M and N split over threads, each calling single-threaded OpenBLAS on its slice.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  const int nt = threads_for(M * N * K / 16);
  const bool split_n = N >= M;
#pragma omp parallel num_threads(nt)
  {
    const auto [p0, p1] = share(split_n ? N : M, omp_get_thread_num(), omp_get_num_threads(), split_n ? 16 : 1);
    if (p1 > p0) {
      const float* as = split_n ? a : (ta ? a + p0 : a + p0 * lda);
      const float* bs = split_n ? (tb ? b + p0 * ldb : b + p0) : b;
      float* cs = split_n ? c + p0 : c + p0 * ldc;
      const int64_t m = split_n ? M : p1 - p0, n = split_n ? p1 - p0 : N;
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(K), 1.0f, as, static_cast<int>(lda), bs,
                  static_cast<int>(ldb), beta, cs, static_cast<int>(ldc));
    }
  }
}

}  // namespace

void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) {
  const int64_t M = dy.rows(), N = dy.cols(), K = w.cols();
  const float *g = dy.f32(), *xp = x.f32();
  if (M == 0 || K == 0) return;
  if (N == 0) {  // no outputs: nothing flows back
    if (!empty(dx) && !accumulate_dx) std::fill_n(dx.f32(), dx.numel(), 0.0f);
    return;
  }
  const float beta = accumulate_dx ? 1.0f : 0.0f;
  if (!empty(dx) && w.dtype != DType::F32)  // a frozen compact weight (it has no dw)
    matmul_dx_compact(M, N, K, g, w, beta, dx.f32(), threads_for(M * N * K / 16));
  else if (!empty(dx))
    gemm(false, false, M, K, N, g, N, w.f32(), K, beta, dx.f32(), K);
  if (!empty(dw)) gemm(true, false, N, K, M, g, N, xp, K, 1.0f, dw.f32(), K);
  if (empty(db)) return;
  float* bp = db.f32();
#pragma omp parallel num_threads(threads_for(M * N))
  {
    const auto [n0, n1] = share(N, omp_get_thread_num(), omp_get_num_threads(), 16);
    std::vector<double> sum(static_cast<size_t>(std::max<int64_t>(n1 - n0, 0)));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = n0; n < n1; ++n) sum[n - n0] += g[m * N + n];
    for (int64_t n = n0; n < n1; ++n) bp[n] = static_cast<float>(bp[n] + sum[n - n0]);
  }
}

void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) {
  const int64_t C = dtable.cols(), V = dtable.rows(), T = ids.numel();
  const int32_t* ip = ids.i32();
  for (int64_t t = 0; t < T; ++t)
    if (ip[t] < 0 || ip[t] >= V) fail("embedding_backward: token id {} outside the vocabulary of {}", ip[t], V);
  const float* g = dy.f32();
  float* dt = dtable.f32();
#pragma omp parallel num_threads(threads_for(T * C))
  {
    // Plain variables: clang 14 cannot name structured bindings inside an OpenMP simd loop.
    const std::pair<int64_t, int64_t> cols = share(C, omp_get_thread_num(), omp_get_num_threads(), 16);
    const int64_t c0 = cols.first, c1 = cols.second;
    for (int64_t t = 0; t < T; ++t) {
      float* row = dt + int64_t{ip[t]} * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) row[c] += g[t * C + c];
    }
  }
}

// dx = s·(dy ⊙ w) − x·s³·mean(dy ⊙ w ⊙ x) per row (s kept for dw), then dw += Σ_rows dy ⊙ x·s
// over column blocks.
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) {
  const int64_t R = x.rows(), C = x.cols();
  const float *xp = x.f32(), *wp = w.f32(), *g = dy.f32();
  std::vector<float> s(static_cast<size_t>(R));
  const int nt = threads_for(R * C);
#pragma omp parallel for num_threads(nt)
  for (int64_t r = 0; r < R; ++r) {
    const float *xr = xp + r * C, *gr = g + r * C;
    float ss = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : ss, dot)
    for (int64_t c = 0; c < C; ++c) {
      ss += xr[c] * xr[c];
      dot += gr[c] * wp[c] * xr[c];
    }
    const float sr = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    s[r] = sr;
    if (empty(dx)) continue;
    const float corr = sr * sr * sr * dot / static_cast<float>(C), keep = accumulate_dx ? 1.0f : 0.0f;
    float* d = dx.f32() + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = keep * d[c] + sr * gr[c] * wp[c] - xr[c] * corr;
  }
  if (empty(dw)) return;
  float* dwp = dw.f32();
#pragma omp parallel num_threads(nt)
  {
    // Plain variables: clang 14 cannot name structured bindings inside an OpenMP simd loop.
    const std::pair<int64_t, int64_t> cols = share(C, omp_get_thread_num(), omp_get_num_threads(), 16);
    const int64_t c0 = cols.first, c1 = cols.second;
    std::vector<float> sum(static_cast<size_t>(std::max<int64_t>(c1 - c0, 0)));
    for (int64_t r = 0; r < R; ++r)
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) sum[c - c0] += g[r * C + c] * xp[r * C + c] * s[r];
    for (int64_t c = c0; c < c1; ++c) dwp[c] += sum[c - c0];
  }
}

void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) {
  const int64_t n = dy.numel();
  const float *d = dy.f32(), *gp = gate.f32(), *u = up.f32();
  float *dg = dgate.f32(), *du = dup.f32();
  if (act == Activation::Silu) {
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float g = gp[i], di = d[i], ui = u[i];
      const float sg = 1.0f / (1.0f + fast_exp(-g));
      dg[i] = di * ui * sg * (1.0f + g * (1.0f - sg));
      du[i] = di * g * sg;
    }
    return;
  }
  constexpr float k0 = 0.797884561f, k1 = 0.044715f;
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gp[i], di = d[i], ui = u[i];
    const float t = fast_tanh(k0 * (g + k1 * g * g * g));
    dg[i] = di * ui * (0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * k0 * (1.0f + 3.0f * k1 * g * g));
    du[i] = di * 0.5f * g * (1.0f + t);
  }
}

}  // namespace arwkv::cpu
