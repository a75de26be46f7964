// The fast CPU form of the WKV-7 backward pass (Ops::wkv7_backward): checkpointed recomputation of
// the forward, then back through time, vectorised over the key index j, parallel with OpenMP.
//
// The math per token (P the state the token starts from, zero after a reset; S the state after it):
//   sa = P·a;  S = P·diag(w) + sa·bᵀ + v·kᵀ;  y = S·r
// Backward, with dS the gradient of S (from later tokens) plus dy·rᵀ:
//   row side, per value row i:   dv_i = dS_i·k;  dsa_i = dS_i·b;  dP_i = dS_i ⊙ w + dsa_i·a
//   key side, sums over rows i:  dr = Sᵀ·dy;  dk = dSᵀ·v;  db = dSᵀ·sa;  dw = Σ_i dS_i ⊙ P_i;  da = Pᵀ·dsa
// What parallelises: the state gradient of row i before a token needs only row i after it (dsa_i
// is a sum along the row, not across rows), exactly as the forward's row i needs only its own sa_i.
// So a block of rows runs the whole backward on its own; only the five key-side gradients are sums
// over all rows of the head, and blocks of one head write them to separate partial buffers that are
// added at the end. Work is split over (sequence, head), and over row blocks when there are fewer
// (sequence, head) pairs than threads.
//
// Memory/time: nothing is stored by the forward. The call reruns the forward of its rows once from
// state_in, keeping the state every K tokens (K = max(32, √T)), then walks the chunks last to first,
// recomputing a chunk's K states from its checkpoint and stepping back through them. Per task that is
// (T/K + K)·rows·N floats of scratch (≈ 1 MB per head at T = 1024, N = 64) for two forwards and one
// backward of arithmetic; storing every state instead would cost T·N² floats per head (16 MB at
// T = 1024). States are row-major here (row i contiguous over j), padded to a multiple of 16
// columns with zeros that stay zero: the key-side sums become vector accumulators over j, and each
// row needs three horizontal sums (sa_i, dv_i, dsa_i).
#include "backend/cpu/wkv7_backward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/vec16.h"
#include "backend/op_checks.h"

namespace arwkv::cpu {
namespace {

constexpr int kKeys = 5;  // packed key-side inputs per token, in this order: r, w, k, a, b

struct Args {
  const float *dy, *state_in, *r, *w, *k, *v, *a, *b;
  const int32_t* reset;                         // [B, T] or nullptr
  float *dr, *dw, *dk, *dv, *da, *db, *dstate;  // dstate may be nullptr
  int64_t B, T, C, H, N;
  int64_t nv, np;    // vectors of 16 per padded row, and the padded row length 16·nv
  int64_t chunk;     // tokens between checkpoints
  bool reset_at(int64_t bi, int64_t t) const { return reset && reset[bi * T + t]; }
};

// One task: rows i0 .. i0 + rows of head h of sequence bi. Its key-side sums go to the five
// [B, T, C] arrays in key_out (the outputs, or a partial buffer when a head is split).
struct Task {
  int64_t bi, h, i0, rows;
  float* key_out[kKeys];  // dr, dw, dk, da, db
};

// Per-thread scratch, reused across tasks.
struct Scratch {
  std::vector<float> keys;    // [chunk][kKeys][np]: the chunk's key-side inputs, zero-padded
  std::vector<float> ckpt;    // [chunks][rows][np]: the state before each chunk
  std::vector<float> states;  // [chunk][rows][np]: the state after each token of the chunk
  std::vector<float> sa;      // [chunk][rows]
  std::vector<float> ds;      // [rows][np]: the state gradient
  std::vector<float> kout;    // [kKeys][np]: one token's key-side sums
  std::vector<vf16> acc;      // [kKeys][nv]: their accumulators when nv is not known at compile time
};

// The key-side inputs of tokens t0 .. t1 of head h, zero-padded to np.
void pack_keys(const Args& s, int64_t bi, int64_t h, int64_t t0, int64_t t1, float* keys) {
  const float* src[kKeys] = {s.r, s.w, s.k, s.a, s.b};
  for (int64_t t = t0; t < t1; ++t)
    for (int x = 0; x < kKeys; ++x) {
      float* dst = keys + ((t - t0) * kKeys + x) * s.np;
      std::memcpy(dst, src[x] + (bi * s.T + t) * s.C + h * s.N, static_cast<size_t>(s.N) * sizeof(float));
      std::fill(dst + s.N, dst + s.np, 0.0f);
    }
}

// One token forward on `rows` padded rows: dst = src·diag(w) + sa·bᵀ + v·kᵀ, src == nullptr meaning a
// zero state (a reset); src may equal dst. sa_out (may be nullptr) receives sa per row.
template <int V>
void step_forward(int64_t vn, int64_t rows, const float* src, float* dst, const float* key, const float* v,
                  float* sa_out) {
  const int64_t nv = V > 0 ? V : vn, np = 16 * nv;
  const float *wk = key + np, *kk = key + 2 * np, *ak = key + 3 * np, *bk = key + 4 * np;
  for (int64_t ii = 0; ii < rows; ++ii) {
    float* out = dst + ii * np;
    const float vi = v[ii];
    float sa = 0.0f;
    if (src) {
      const float* in = src + ii * np;
      vf16 acc = {};
      for (int64_t q = 0; q < nv; ++q) acc += load16(in + 16 * q) * load16(ak + 16 * q);
      sa = hsum(acc);
      for (int64_t q = 0; q < nv; ++q)
        store16(out + 16 * q,
                load16(in + 16 * q) * load16(wk + 16 * q) + (sa * load16(bk + 16 * q) + vi * load16(kk + 16 * q)));
    } else {
      for (int64_t q = 0; q < nv; ++q) store16(out + 16 * q, vi * load16(kk + 16 * q));
    }
    if (sa_out) sa_out[ii] = sa;
  }
}

// The row-side inputs and outputs of one token for a block of rows.
struct RowIo {
  const float *dy, *v;
  float* dv;
};

// One token backward on `rows` padded rows. P: the state the token started from (nullptr after a
// reset), S: after it, sa: per row. ds holds the gradient of S without dy·rᵀ on entry and that of
// the state before the token on return. kout [kKeys][np] receives the key-side sums of the rows.
template <int V>
void step_backward(int64_t vn, int64_t rows, const float* P, const float* S, const float* sa, float* ds,
                   const float* key, const RowIo& io, float* kout, vf16* acc_mem) {
  const int64_t nv = V > 0 ? V : vn, np = 16 * nv;
  const float *rk = key, *wk = key + np, *kk = key + 2 * np, *ak = key + 3 * np, *bk = key + 4 * np;
  vf16 acc_reg[V > 0 ? kKeys * V : 1];
  vf16* acc = V > 0 ? acc_reg : acc_mem;  // [x·nv + q] for x = r, w, k, a, b
  for (int64_t e = 0; e < kKeys * nv; ++e) acc[e] = vf16{};
  for (int64_t ii = 0; ii < rows; ++ii) {
    float* g = ds + ii * np;
    const float* sn = S + ii * np;
    const float dyi = io.dy[ii], vi = io.v[ii], sai = sa[ii];
    vf16 pv = {}, pb = {};
    for (int64_t q = 0; q < nv; ++q) {
      const vf16 x = load16(g + 16 * q) + dyi * load16(rk + 16 * q);
      store16(g + 16 * q, x);
      acc[q] += dyi * load16(sn + 16 * q);
      acc[2 * nv + q] += vi * x;
      acc[4 * nv + q] += sai * x;
      pv += x * load16(kk + 16 * q);
      pb += x * load16(bk + 16 * q);
    }
    io.dv[ii] += hsum(pv);
    if (!P) {  // a reset: the state before the token did not feed it, so no gradient flows back
      std::fill(g, g + np, 0.0f);
      continue;
    }
    const float dsa = hsum(pb);
    const float* p = P + ii * np;
    for (int64_t q = 0; q < nv; ++q) {
      const vf16 x = load16(g + 16 * q), pq = load16(p + 16 * q);
      acc[nv + q] += x * pq;
      acc[3 * nv + q] += dsa * pq;
      store16(g + 16 * q, x * load16(wk + 16 * q) + dsa * load16(ak + 16 * q));
    }
  }
  for (int64_t e = 0; e < kKeys * nv; ++e) store16(kout + 16 * e, acc[e]);
}

// The whole backward of one task: checkpoints, then chunks last to first.
template <int V>
void backward_block(const Args& s, const Task& task, Scratch& sc) {
  const int64_t N = s.N, np = s.np, T = s.T, K = s.chunk, rows = task.rows, rn = rows * np;
  const int64_t chunks = (T + K - 1) / K, bi = task.bi, h = task.h;
  sc.keys.resize(static_cast<size_t>(K * kKeys * np));
  sc.ckpt.resize(static_cast<size_t>(std::max<int64_t>(chunks, 1) * rn));
  sc.states.resize(static_cast<size_t>(K * rn));
  sc.sa.resize(static_cast<size_t>(K * rows));
  sc.ds.assign(static_cast<size_t>(rn), 0.0f);
  sc.kout.resize(static_cast<size_t>(kKeys * np));
  sc.acc.resize(static_cast<size_t>(kKeys * s.nv));
  const int64_t state_off = ((bi * s.H + h) * N + task.i0) * N;
  auto row_io = [&](int64_t t) {
    const int64_t o = (bi * T + t) * s.C + h * N + task.i0;
    return RowIo{s.dy + o, s.v + o, s.dv + o};
  };

  float* ck = sc.ckpt.data();
  std::fill(ck, ck + rn, 0.0f);
  for (int64_t ii = 0; ii < rows; ++ii)
    std::memcpy(ck + ii * np, s.state_in + state_off + ii * N, static_cast<size_t>(N) * sizeof(float));
  for (int64_t c = 0; c + 1 < chunks; ++c) {
    float* next = ck + (c + 1) * rn;
    std::memcpy(next, ck + c * rn, static_cast<size_t>(rn) * sizeof(float));
    pack_keys(s, bi, h, c * K, (c + 1) * K, sc.keys.data());
    for (int64_t t = c * K; t < (c + 1) * K; ++t)
      step_forward<V>(s.nv, rows, s.reset_at(bi, t) ? nullptr : next, next,
                      sc.keys.data() + (t - c * K) * kKeys * np, row_io(t).v, nullptr);
  }

  if (s.dstate)
    for (int64_t ii = 0; ii < rows; ++ii)
      std::memcpy(sc.ds.data() + ii * np, s.dstate + state_off + ii * N, static_cast<size_t>(N) * sizeof(float));
  for (int64_t c = chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * K, t1 = std::min(T, t0 + K);
    // st(l): the state before local token l (the checkpoint for l = 0), st(l + 1) the state after it
    auto st = [&](int64_t l) { return l == 0 ? ck + c * rn : sc.states.data() + (l - 1) * rn; };
    auto key = [&](int64_t l) { return sc.keys.data() + l * kKeys * np; };
    pack_keys(s, bi, h, t0, t1, sc.keys.data());
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t l = t - t0;
      step_forward<V>(s.nv, rows, s.reset_at(bi, t) ? nullptr : st(l), st(l + 1), key(l), row_io(t).v,
                      sc.sa.data() + l * rows);
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t l = t - t0;
      step_backward<V>(s.nv, rows, s.reset_at(bi, t) ? nullptr : st(l), st(l + 1), sc.sa.data() + l * rows,
                       sc.ds.data(), key(l), row_io(t), sc.kout.data(), sc.acc.data());
      const int64_t o = (bi * T + t) * s.C + h * N;
      for (int x = 0; x < kKeys; ++x) {
        float* dst = task.key_out[x] + o;
        const float* src = sc.kout.data() + x * np;
        for (int64_t j = 0; j < N; ++j) dst[j] += src[j];
      }
    }
  }
  if (s.dstate)
    for (int64_t ii = 0; ii < rows; ++ii)
      std::memcpy(s.dstate + state_off + ii * N, sc.ds.data() + ii * np, static_cast<size_t>(N) * sizeof(float));
}

}  // namespace

void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                   Tensor a, Tensor b, Tensor reset) {
  const int64_t B = r.dim(0), T = r.dim(1), C = r.dim(2), H = state_in.dim(1), N = state_in.dim(2);
  if (B * T * C == 0) return;
  const int64_t nv = (N + 15) / 16;
  const auto chunk = std::max<int64_t>(32, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(T)))));
  const Args s{dy.f32(), state_in.f32(), r.f32(), w.f32(), k.f32(), v.f32(), a.f32(), b.f32(),
               op_checks::empty(reset) ? nullptr : reset.i32(),
               d.dr.f32(), d.dw.f32(), d.dk.f32(), d.dv.f32(), d.da.f32(), d.db.f32(),
               op_checks::empty(d.dstate) ? nullptr : d.dstate.f32(),
               B, T, C, H, N, nv, 16 * nv, chunk};

  // Row blocks only when (sequence, head) pairs are fewer than threads; at least 8 rows a block.
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads(), heads = B * H;
  const int64_t want = std::clamp<int64_t>((threads + heads - 1) / heads, 1, std::max<int64_t>(1, N / 8));
  const int64_t rows = (N + want - 1) / want, blocks = (N + rows - 1) / rows, tasks = heads * blocks;
  const int64_t n = B * T * C;
  std::vector<float> partial(static_cast<size_t>((blocks - 1) * kKeys * n), 0.0f);
  float* outs[kKeys] = {s.dr, s.dw, s.dk, s.da, s.db};
  const bool parallel = tasks > 1 && T * N * N * heads >= (1 << 15) && !omp_in_parallel();

#pragma omp parallel if (parallel)
  {
    Scratch sc;
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t blk = task % blocks, bh = task / blocks;
      Task tk{bh / H, bh % H, blk * rows, std::min(rows, N - blk * rows), {}};
      for (int x = 0; x < kKeys; ++x)
        tk.key_out[x] = blk == 0 ? outs[x] : partial.data() + ((blk - 1) * kKeys + x) * n;
      if (nv == 4)
        backward_block<4>(s, tk, sc);
      else
        backward_block<0>(s, tk, sc);
    }
  }
  if (blocks == 1) return;
#pragma omp parallel for if (parallel)
  for (int64_t e = 0; e < n; ++e)
    for (int x = 0; x < kKeys; ++x)
      for (int64_t blk = 1; blk < blocks; ++blk) outs[x][e] += partial[static_cast<size_t>(((blk - 1) * kKeys + x) * n + e)];
}

}  // namespace arwkv::cpu
