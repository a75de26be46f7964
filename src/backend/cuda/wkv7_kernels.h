// WKV-7 on the GPU (see ops.h for the recurrence). One block of NMAX threads per (sequence, head);
// thread i keeps row i of the fp32 state S in registers and the token's r, w, k, a, b sit in shared
// memory, so a token costs N² fused multiply-adds per head with no global traffic for the state.
//
// The backward pass recomputes the states it needs: a forward sweep keeps a snapshot of S at the start
// of every chunk of kWkvChunk tokens; then, chunk by chunk from the last, it recomputes the chunk's
// states into a scratch slab and walks the chunk's tokens backwards. The gradient of the state dS is
// held twice, by rows (thread i owns row i: the sums over columns) and by columns (thread j owns
// column j: the sums over rows), so no token needs a reduction across threads:
//   dS += dy·rᵀ;   dr_j = Σ_i dy_i S_ij;   dw_j = Σ_i dS_ij S⁻_ij;   db_j = Σ_i dS_ij sa_i;   dk_j = Σ_i dS_ij v_i
//   dv_i = Σ_j dS_ij k_j;   dsa_i = Σ_j dS_ij b_j;   da_j = Σ_i dsa_i S⁻_ij;   dS⁻ = dS ⊙ w + dsa·aᵀ
// with S the state after the token, S⁻ the one before it (zero where the token resets).
// Included inside the backend's namespace after kernels.h.
#pragma once

constexpr int kWkvChunk = 64;

template <int NMAX>
struct WkvToken {
  float r[NMAX], w[NMAX], k[NMAX], v[NMAX], a[NMAX], b[NMAX], dy[NMAX], sa[NMAX], dsa[NMAX];
};

// Loads token o's vectors of this head into shared memory (thread i loads element i).
template <int NMAX>
GPU_FN void wkv_load(WkvToken<NMAX>& sh, const float* r, const float* w, const float* k, const float* v,
                     const float* a, const float* b, int64_t o, int i, int N) {
  if (i < N) {
    sh.r[i] = r[o + i];
    sh.w[i] = w[o + i];
    sh.k[i] = k[o + i];
    sh.v[i] = v[o + i];
    sh.a[i] = a[o + i];
    sh.b[i] = b[o + i];
  }
}

// One token on thread i's state row s (shared vectors loaded and published); returns y_i.
template <int NMAX>
GPU_FN float wkv_step(float (&s)[NMAX], const WkvToken<NMAX>& sh, int i, int N) {
  float sa = 0.0f;
  GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) sa += s[j] * sh.a[j];
  const float vi = sh.v[i];
  float y = 0.0f;
  GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) {
    s[j] = s[j] * sh.w[j] + sa * sh.b[j] + vi * sh.k[j];
    y += s[j] * sh.r[j];
  }
  return y;
}

template <int NMAX>
GPU_KERNEL void k_wkv7_forward(float* y, float* state, const float* r, const float* w, const float* k, const float* v,
                               const float* a, const float* b, const int32_t* reset, int64_t T, int H, int N,
                               int64_t C) {
  GPU_SHARED WkvToken<NMAX> sh;
  const int64_t bh = blockIdx.x, bi = bh / H, h = bh % H;
  const int i = static_cast<int>(threadIdx.x);
  const bool on = i < N;
  float s[NMAX];
  float* st = state + bh * N * N + int64_t{i} * N;
  GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = on && j < N ? st[j] : 0.0f;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = (bi * T + t) * C + h * N;
    if (reset && reset[bi * T + t]) {
      GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = 0.0f;
    }
    wkv_load(sh, r, w, k, v, a, b, o, i, N);
    gpu_sync();
    if (on) y[o + i] = wkv_step(s, sh, i, N);
    gpu_sync();
  }
  if (on) {
    GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) st[j] = s[j];
  }
}

// Gradients accumulate into dr ... db; dstate (may be null) is the gradient of the final state on
// entry and of state_in on return. snaps: [B·H, ceil(T/kWkvChunk), N, N]; chunk: [B·H, kWkvChunk, N, N].
template <int NMAX>
GPU_KERNEL void k_wkv7_backward(float* dr, float* dw, float* dk, float* dv, float* da, float* db, float* dstate,
                                const float* dy, const float* state_in, const float* r, const float* w,
                                const float* k, const float* v, const float* a, const float* b, const int32_t* reset,
                                int64_t T, int H, int N, int64_t C, float* snaps, float* chunk) {
  GPU_SHARED WkvToken<NMAX> sh;
  const int64_t bh = blockIdx.x, bi = bh / H, h = bh % H, NN = int64_t{N} * N;
  const int i = static_cast<int>(threadIdx.x);
  const bool on = i < N;
  const int64_t n_chunks = (T + kWkvChunk - 1) / kWkvChunk;
  float* snap = snaps + bh * n_chunks * NN;
  float* cst = chunk + bh * kWkvChunk * NN;
  auto resets = [&](int64_t t) { return reset && reset[bi * T + t] != 0; };

  // Forward sweep: the state at the start of every chunk.
  float s[NMAX];
  GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = on && j < N ? state_in[bh * NN + int64_t{i} * N + j] : 0.0f;
  for (int64_t t = 0; t < T; ++t) {
    if (t % kWkvChunk == 0 && on) {
      GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) snap[t / kWkvChunk * NN + int64_t{i} * N + j] = s[j];
    }
    if (resets(t)) {
      GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = 0.0f;
    }
    wkv_load(sh, r, w, k, v, a, b, (bi * T + t) * C + h * N, i, N);
    gpu_sync();
    if (on) wkv_step(s, sh, i, N);
    gpu_sync();
  }

  // dS by rows (ds[j] = dS[i][j]) and by columns (dc[m] = dS[m][i]).
  float ds[NMAX], dc[NMAX];
  GPU_UNROLL for (int j = 0; j < NMAX; ++j) {
    const bool in = dstate && on && j < N;
    ds[j] = in ? dstate[bh * NN + int64_t{i} * N + j] : 0.0f;
    dc[j] = in ? dstate[bh * NN + int64_t{j} * N + i] : 0.0f;
  }
  for (int64_t c = n_chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * kWkvChunk, t1 = t0 + kWkvChunk < T ? t0 + kWkvChunk : T;
    GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = on && j < N ? snap[c * NN + int64_t{i} * N + j] : 0.0f;
    for (int64_t t = t0; t < t1; ++t) {  // the chunk's states after each token
      if (resets(t)) {
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) s[j] = 0.0f;
      }
      wkv_load(sh, r, w, k, v, a, b, (bi * T + t) * C + h * N, i, N);
      gpu_sync();
      if (on) {
        wkv_step(s, sh, i, N);
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) cst[(t - t0) * NN + int64_t{i} * N + j] = s[j];
      }
      gpu_sync();
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t o = (bi * T + t) * C + h * N;
      const bool rs = resets(t);
      const float* prev = t == t0 ? snap + c * NN : cst + (t - 1 - t0) * NN;  // before the reset
      const float* cur = cst + (t - t0) * NN;
      wkv_load(sh, r, w, k, v, a, b, o, i, N);
      if (on) {
        sh.dy[i] = dy[o + i];
        float sa = 0.0f;
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N && !rs) sa += prev[int64_t{i} * N + j] * a[o + j];
        sh.sa[i] = sa;
      }
      gpu_sync();
      if (on) {
        const float dyi = sh.dy[i], ri = sh.r[i];
        float drj = 0.0f, dwj = 0.0f, dbj = 0.0f, dkj = 0.0f, dvi = 0.0f, dsai = 0.0f;
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) {
          ds[j] += dyi * sh.r[j];
          dc[j] += sh.dy[j] * ri;
          const float before = rs ? 0.0f : prev[int64_t{j} * N + i];
          drj += sh.dy[j] * cur[int64_t{j} * N + i];
          dwj += dc[j] * before;
          dbj += dc[j] * sh.sa[j];
          dkj += dc[j] * sh.v[j];
          dvi += ds[j] * sh.k[j];
          dsai += ds[j] * sh.b[j];
        }
        sh.dsa[i] = dsai;
        dr[o + i] += drj;
        dw[o + i] += dwj;
        db[o + i] += dbj;
        dk[o + i] += dkj;
        dv[o + i] += dvi;
      }
      gpu_sync();
      if (on) {
        float daj = 0.0f;
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N && !rs) daj += sh.dsa[j] * prev[int64_t{j} * N + i];
        da[o + i] += daj;
        const float wi = sh.w[i], ai = sh.a[i], dsai = sh.dsa[i];
        GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) {
          ds[j] = rs ? 0.0f : ds[j] * sh.w[j] + dsai * sh.a[j];
          dc[j] = rs ? 0.0f : dc[j] * wi + sh.dsa[j] * ai;
        }
      }
      gpu_sync();
    }
  }
  if (dstate && on) {
    GPU_UNROLL for (int j = 0; j < NMAX; ++j) if (j < N) dstate[bh * NN + int64_t{i} * N + j] = ds[j];
  }
}
