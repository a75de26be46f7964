// The fast CPU forms of WKV-7: token-serial, vectorised over the rows of the state, parallel over
// (sequence, head, block of rows) with OpenMP.
//
// Each row i of a head's state evolves on its own: S_i ← S_i·(diag(w) + a·bᵀ) + v_i·kᵀ needs only
// sa_i = S_i·a from that same row. So the work splits into blocks of kRows rows, and a block's
// recurrence is independent of every other block (a block of 64, a whole head here, measured
// faster than blocks of 16 or 32: each broadcast serves four vectors). Within a block the state is held transposed,
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
#include <cstring>
#include <vector>

#include "backend/cpu/vec16.h"

namespace arwkv::cpu {
namespace {

constexpr int kRows = 64;  // rows of the state per task
// Decode splits over (sequence, head) only from 32 heads of 64 on. A head takes ~0.4 us; on an
// idle machine two threads already win from 4 heads (9 heads: 2.4 instead of 3.6 us), but when the
// cores are shared a fork/join can wait a whole scheduler slice (measured: 8 ms instead of 4 us),
// and one layer's decode is a small part of a token's time anyway.
constexpr int64_t kDecodeParallelMin = 32 * 64 * 64;

// Views of the inputs shared by every task of one call.
struct Seq {
  const float *r, *w, *k, *v, *a, *b;
  float* y;
  float* state;
  const int32_t* reset;  // [B, T] or nullptr
  int64_t B, T, C, H, N;
};

// One token's key-side inputs (length N) and its rows of v and y (from the block's first row).
struct Token {
  const float *r, *w, *k, *a, *b, *v;
  float* y;
};

// One token on a block of `rows` rows held transposed, st[j·rows + ii] = S_(i0+ii, j); plain loops
// for any row count (the tail of a head whose size is not a multiple of the block).
void token_any(int64_t N, int rows, float* st, const Token& in) {
  float sa[kRows] = {}, y[kRows] = {};
  for (int64_t j = 0; j < N; ++j)
    for (int ii = 0; ii < rows; ++ii) sa[ii] += st[j * rows + ii] * in.a[j];
  for (int64_t j = 0; j < N; ++j)
    for (int ii = 0; ii < rows; ++ii) {
      float& x = st[j * rows + ii];
      x = x * in.w[j] + (sa[ii] * in.b[j] + in.v[ii] * in.k[j]);
      y[ii] += x * in.r[j];
    }
  for (int ii = 0; ii < rows; ++ii) in.y[ii] = y[ii];
}

// The same for R rows (a multiple of 16) in vector registers. Sums over even and odd j go to
// separate accumulators so that two FMA chains run side by side.
template <int R>
void token_vec(int64_t N, float* st, const Token& in) {
  constexpr int V = R / 16;
  vf16 sa_e[V] = {}, sa_o[V] = {};
  int64_t j = 0;
  for (; j + 1 < N; j += 2)
    for (int q = 0; q < V; ++q) {
      sa_e[q] += load16(st + j * R + 16 * q) * in.a[j];
      sa_o[q] += load16(st + (j + 1) * R + 16 * q) * in.a[j + 1];
    }
  if (j < N)
    for (int q = 0; q < V; ++q) sa_e[q] += load16(st + j * R + 16 * q) * in.a[j];
  vf16 sa[V], v[V], y_e[V] = {}, y_o[V] = {};
  for (int q = 0; q < V; ++q) sa[q] = sa_e[q] + sa_o[q], v[q] = load16(in.v + 16 * q);
  auto update = [&](int64_t jj, vf16* y) {
    const float wj = in.w[jj], bj = in.b[jj], kj = in.k[jj], rj = in.r[jj];
    for (int q = 0; q < V; ++q) {
      float* col = st + jj * R + 16 * q;
      const vf16 x = load16(col) * wj + (sa[q] * bj + v[q] * kj);
      store16(col, x);
      y[q] += x * rj;
    }
  };
  for (j = 0; j + 1 < N; j += 2) update(j, y_e), update(j + 1, y_o);
  if (j < N) update(j, y_e);
  for (int q = 0; q < V; ++q) store16(in.y + 16 * q, y_e[q] + y_o[q]);
}

// The token loop for rows i0 .. i0 + rows of head h of sequence bi: R rows in vectors, or with
// R = 0 any row count in plain loops.
template <int R>
void forward_block(const Seq& s, int64_t bi, int64_t h, int64_t i0, int rows, float* st) {
  const int64_t N = s.N;
  float* S = s.state + ((bi * s.H + h) * N + i0) * N;
  for (int ii = 0; ii < rows; ++ii)
    for (int64_t j = 0; j < N; ++j) st[j * rows + ii] = S[ii * N + j];
  for (int64_t t = 0; t < s.T; ++t) {
    if (s.reset && s.reset[bi * s.T + t]) std::fill(st, st + N * rows, 0.0f);
    const int64_t o = (bi * s.T + t) * s.C + h * N;
    const Token in{s.r + o, s.w + o, s.k + o, s.a + o, s.b + o, s.v + o + i0, s.y + o + i0};
    if constexpr (R > 0)
      token_vec<R>(N, st, in);
    else
      token_any(N, rows, st, in);
  }
  for (int ii = 0; ii < rows; ++ii)
    for (int64_t j = 0; j < N; ++j) S[ii * N + j] = st[j * rows + ii];
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
