// The fast CPU forms of WKV-7: token-serial, vectorised over the rows of the state, parallel over
// (sequence, head, block of rows) with OpenMP.
//
// Each row i of a head's state evolves on its own: S_i ← S_i·(diag(w) + a·bᵀ) + v_i·kᵀ needs only
// sa_i = S_i·a from that same row. So the work splits into blocks of kRows rows, and a block's
// recurrence is independent of every other block. Within a block the state is held transposed,
// st[j·rows + ii] = S_(i0+ii, j), so that every step is a broadcast of one key-side scalar (a_j,
// w_j, b_j, k_j, r_j) times a vector over the rows: no horizontal sums in the token loop. Two
// accumulators over even and odd j keep the FMA dependency chains short.
//
// The one-token decode works on the state in place (row-major, no transposition): per row a dot
// product for sa_i, the update, and a dot product for y_i, in one pass over the state.
//
// No cumulative decay products appear, so decays near 0 or near 1 need no special care. A backward
// pass can rerun a block's token loop from stored per-chunk states.
#include "backend/cpu/wkv7.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace arwkv::cpu {
namespace {

constexpr int kRows = 32;  // rows of the state per task: 4 AVX2 or 2 AVX-512 registers
constexpr int64_t kDecodeParallelMin = 1 << 16;  // state elements below which decode stays serial

// Views of the inputs shared by every task of one call.
struct Seq {
  const float *r, *w, *k, *v, *a, *b;
  float* y;
  float* state;
  const int32_t* reset;  // [B, T] or nullptr
  int64_t B, T, C, H, N;
};

// The token loop for rows i0 .. i0 + rows of head h of sequence bi. R is the row count when known
// at compile time (the vectorised case) and 0 for a short tail block of rows_rt rows.
template <int R>
void forward_block(const Seq& s, int64_t bi, int64_t h, int64_t i0, int rows_rt, float* st) {
  const int rows = R ? R : rows_rt;
  const int64_t N = s.N;
  float* S = s.state + ((bi * s.H + h) * N + i0) * N;
  for (int ii = 0; ii < rows; ++ii)
    for (int64_t j = 0; j < N; ++j) st[j * rows + ii] = S[ii * N + j];

  for (int64_t t = 0; t < s.T; ++t) {
    if (s.reset && s.reset[bi * s.T + t]) std::fill(st, st + N * rows, 0.0f);
    const int64_t o = (bi * s.T + t) * s.C + h * N;
    const float *rp = s.r + o, *wp = s.w + o, *kp = s.k + o, *ap = s.a + o, *bp = s.b + o;
    const float* vp = s.v + o + i0;

    float sa0[kRows] = {}, sa1[kRows] = {};  // sa over even and odd j
    int64_t j = 0;
    for (; j + 1 < N; j += 2) {
      const float a0 = ap[j], a1 = ap[j + 1];
      const float *c0 = st + j * rows, *c1 = c0 + rows;
#pragma omp simd
      for (int ii = 0; ii < rows; ++ii) {
        sa0[ii] = std::fma(c0[ii], a0, sa0[ii]);
        sa1[ii] = std::fma(c1[ii], a1, sa1[ii]);
      }
    }
    if (j < N)
      for (int ii = 0; ii < rows; ++ii) sa0[ii] = std::fma(st[j * rows + ii], ap[j], sa0[ii]);
    float sa[kRows], vv[kRows];
    for (int ii = 0; ii < rows; ++ii) {
      sa[ii] = sa0[ii] + sa1[ii];
      vv[ii] = vp[ii];
    }

    float y0[kRows] = {}, y1[kRows] = {};  // y over even and odd j
    for (j = 0; j + 1 < N; j += 2) {
      const float w0 = wp[j], b0 = bp[j], k0 = kp[j], r0 = rp[j];
      const float w1 = wp[j + 1], b1 = bp[j + 1], k1 = kp[j + 1], r1 = rp[j + 1];
      float *c0 = st + j * rows, *c1 = c0 + rows;
#pragma omp simd
      for (int ii = 0; ii < rows; ++ii) {
        const float x0 = std::fma(c0[ii], w0, std::fma(sa[ii], b0, vv[ii] * k0));
        const float x1 = std::fma(c1[ii], w1, std::fma(sa[ii], b1, vv[ii] * k1));
        c0[ii] = x0;
        c1[ii] = x1;
        y0[ii] = std::fma(x0, r0, y0[ii]);
        y1[ii] = std::fma(x1, r1, y1[ii]);
      }
    }
    if (j < N) {
      float* col = st + j * rows;
      for (int ii = 0; ii < rows; ++ii) {
        col[ii] = std::fma(col[ii], wp[j], std::fma(sa[ii], bp[j], vv[ii] * kp[j]));
        y0[ii] = std::fma(col[ii], rp[j], y0[ii]);
      }
    }
    float* yp = s.y + o + i0;
    for (int ii = 0; ii < rows; ++ii) yp[ii] = y0[ii] + y1[ii];
  }

  for (int ii = 0; ii < rows; ++ii)
    for (int64_t j = 0; j < N; ++j) S[ii * N + j] = st[j * rows + ii];
}

// Sixteen fp32 lanes as a GCC/Clang vector type: one AVX-512 register, two AVX2 ones.
using vf16 = float __attribute__((vector_size(64)));

inline vf16 load16(const float* p) {
  vf16 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline void store16(float* p, vf16 x) { std::memcpy(p, &x, sizeof x); }

// The sum of the lanes as a tree (halving), not a 16-long chain of scalar adds.
inline float hsum(vf16 x) {
  using vf8 = float __attribute__((vector_size(32)));
  using vf4 = float __attribute__((vector_size(16)));
  const vf8 h8 = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
  const vf4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  const vf4 h2 = h4 + __builtin_shufflevector(h4, h4, 2, 3, 0, 1);
  return h2[0] + h2[1];
}

// One token for one head, the row-major state in place, N a multiple of 16 known at compile time:
// the key-side vectors stay in registers, and each row costs two dot products (sa_i, y_i) and
// the update in one pass.
template <int N>
void decode_head(const float* rp, const float* wp, const float* kp, const float* vp, const float* ap,
                 const float* bp, float* S, float* yp) {
  constexpr int V = N / 16;
  vf16 r[V], w[V], k[V], a[V], b[V];
  for (int q = 0; q < V; ++q) {
    r[q] = load16(rp + 16 * q), w[q] = load16(wp + 16 * q), k[q] = load16(kp + 16 * q);
    a[q] = load16(ap + 16 * q), b[q] = load16(bp + 16 * q);
  }
  for (int i = 0; i < N; ++i) {
    float* row = S + i * N;
    vf16 s[V], sa_part = {}, y_part = {};
    for (int q = 0; q < V; ++q) {
      s[q] = load16(row + 16 * q);
      sa_part += s[q] * a[q];
    }
    const float sa = hsum(sa_part), vi = vp[i];
    for (int q = 0; q < V; ++q) {
      s[q] = s[q] * w[q] + (sa * b[q] + vi * k[q]);
      store16(row + 16 * q, s[q]);
      y_part += s[q] * r[q];
    }
    yp[i] = hsum(y_part);
  }
}

// The same for any N, with plain loops.
void decode_head_any(int64_t N, const float* rp, const float* wp, const float* kp, const float* vp, const float* ap,
                     const float* bp, float* S, float* yp) {
  for (int64_t i = 0; i < N; ++i) {
    float* row = S + i * N;
    float sa = 0.0f;
    for (int64_t j = 0; j < N; ++j) sa += row[j] * ap[j];
    float acc = 0.0f;
    for (int64_t j = 0; j < N; ++j) {
      row[j] = row[j] * wp[j] + (sa * bp[j] + vp[i] * kp[j]);
      acc += row[j] * rp[j];
    }
    yp[i] = acc;
  }
}

Seq make_seq(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
             const int32_t* reset, int64_t T) {
  return Seq{r.f32(),  w.f32(), k.f32(),      v.f32(),      a.f32(),   b.f32(),   y.f32(),
             state.f32(), reset, state.dim(0), T,            r.cols(), state.dim(1), state.dim(2)};
}

}  // namespace

void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                  Tensor reset) {
  const bool has_reset = reset.data != nullptr && reset.numel() > 0;
  const Seq s = make_seq(y, state, r, w, k, v, a, b, has_reset ? reset.i32() : nullptr, r.dim(1));
  const int64_t full = s.N / kRows, tail = s.N % kRows;
  const int64_t blocks = full + (tail ? 1 : 0), tasks = s.B * s.H * blocks;
  const bool parallel = tasks > 1 && s.T * s.N * s.N * tasks / blocks >= (1 << 16) && !omp_in_parallel();
#pragma omp parallel if (parallel)
  {
    std::vector<float> st(static_cast<size_t>(kRows * s.N));
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t blk = task % blocks, bh = task / blocks;
      if (blk < full)
        forward_block<kRows>(s, bh / s.H, bh % s.H, blk * kRows, kRows, st.data());
      else
        forward_block<0>(s, bh / s.H, bh % s.H, blk * kRows, static_cast<int>(tail), st.data());
    }
  }
}

void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) {
  const Seq s = make_seq(y, state, r, w, k, v, a, b, nullptr, 1);
  const int64_t tasks = s.B * s.H;
  const bool parallel = tasks > 1 && tasks * s.N * s.N >= kDecodeParallelMin && !omp_in_parallel();
#pragma omp parallel for if (parallel)
  for (int64_t bh = 0; bh < tasks; ++bh) {
    const int64_t o = (bh / s.H) * s.C + (bh % s.H) * s.N;
    float* S = s.state + bh * s.N * s.N;
    if (s.N == 64)
      decode_head<64>(s.r + o, s.w + o, s.k + o, s.v + o, s.a + o, s.b + o, S, s.y + o);
    else
      decode_head_any(s.N, s.r + o, s.w + o, s.k + o, s.v + o, s.a + o, s.b + o, S, s.y + o);
  }
}

}  // namespace arwkv::cpu
