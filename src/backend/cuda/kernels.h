// The CUDA backend's kernels, written once in the language of gpu.h and compiled both by nvcc and,
// against the CPU emulation, by the host compiler. Included inside the backend's namespace by
// cuda_ops.cu and cuda_ops_emulated.cpp. All tensors are fp32 (I32 for indices), contiguous,
// row-major, as ops.h defines them; the recurrent state stays fp32 and sums over a vocabulary or a
// whole row run in double, as in the CPU backends.
//
// Launch shapes: "flat" kernels take any grid and walk their n elements with a grid-stride loop;
// "row" kernels take one block per row (grid-stride over rows) with a power-of-two block; the
// per-head kernels take grid (rows, heads) and a power-of-two block of at least N threads; the WKV-7
// kernels take one block of NMAX threads per (sequence, head), thread i owning row i of the state.
// Needs (included by the TU first): backend/cuda/gpu.h.
#pragma once

using namespace ::arwkv::gpu_lang;

#define ARWKV_FOR_FLAT(i, n)                                                              \
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < (n);              \
       i += int64_t{gridDim.x} * blockDim.x)

// ---- reductions over a block (blockDim.x a power of two; every thread must call) ---------------

template <typename T, typename Combine>
GPU_FN T block_reduce(T v, T* red, Combine combine) {
  const unsigned t = threadIdx.x;
  red[t] = v;
  gpu_sync();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) red[t] = combine(red[t], red[t + s]);
    gpu_sync();
  }
  const T out = red[0];
  gpu_sync();  // everyone has read red[0] before the next reduction reuses red
  return out;
}

template <typename T>
GPU_FN T block_sum(T v, T* red) {
  return block_reduce(v, red, [](T a, T b) { return a + b; });
}

template <typename T>
GPU_FN T block_max(T v, T* red) {
  return block_reduce(v, red, [](T a, T b) { return b > a ? b : a; });
}

GPU_FN double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
GPU_FN float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- element-wise -----------------------------------------------------------------------------

GPU_KERNEL void k_add(float* y, const float* a, const float* b, int64_t n) {
  ARWKV_FOR_FLAT(i, n) y[i] = a[i] + b[i];
}
GPU_KERNEL void k_scale(float* x, float s, int64_t n) {
  ARWKV_FOR_FLAT(i, n) x[i] *= s;
}
GPU_KERNEL void k_tanh(float* y, const float* x, int64_t n) {
  ARWKV_FOR_FLAT(i, n) y[i] = static_cast<float>(tanh(static_cast<double>(x[i])));
}
GPU_KERNEL void k_sigmoid(float* y, const float* x, int64_t n) {
  ARWKV_FOR_FLAT(i, n) y[i] = static_cast<float>(sigmoid_d(x[i]));
}
// GELU's tanh form: t = tanh(√(2/π)·(x + 0.044715·x³)), gelu = ½x(1 + t).
GPU_FN float gelu_tanh_t(float x) { return tanhf(0.797884561f * (x + 0.044715f * x * x * x)); }

// y = act(gate) ⊙ up; gelu: act 1 is GELU (tanh form), 0 SiLU.
GPU_KERNEL void k_glu(float* y, const float* gate, const float* up, int64_t n, int gelu) {
  ARWKV_FOR_FLAT(i, n) {
    const float g = gate[i];
    y[i] = (gelu ? 0.5f * g * (1.0f + gelu_tanh_t(g)) : g * sigmoid_f(g)) * up[i];
  }
}
GPU_KERNEL void k_tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  ARWKV_FOR_FLAT(i, n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
GPU_KERNEL void k_sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n) {
  ARWKV_FOR_FLAT(i, n) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}
// dgate = dy ⊙ up ⊙ act'(gate), dup = dy ⊙ act(gate); outputs may alias inputs (all read first).
GPU_KERNEL void k_glu_backward(float* dgate, float* dup, const float* dy, const float* gate, const float* up,
                               int64_t n, int gelu) {
  ARWKV_FOR_FLAT(i, n) {
    const float g = gate[i], u = up[i], d = dy[i];
    if (gelu) {
      const float t = gelu_tanh_t(g);
      dgate[i] = d * u * (0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * 0.797884561f * (1.0f + 0.134145f * g * g));
      dup[i] = d * 0.5f * g * (1.0f + t);
    } else {
      const float s = sigmoid_f(g);
      dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
      dup[i] = d * g * s;
    }
  }
}
GPU_KERNEL void k_add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  ARWKV_FOR_FLAT(i, rows * cols) y[i] += bias[i % cols];
}
// db[n] += Σ_m dy[m, n]
GPU_KERNEL void k_column_sums(float* db, const float* dy, int64_t rows, int64_t cols) {
  ARWKV_FOR_FLAT(n, cols) {
    double s = 0.0;
    for (int64_t m = 0; m < rows; ++m) s += dy[m * cols + n];
    db[n] = static_cast<float>(db[n] + s);
  }
}
GPU_KERNEL void k_embedding(float* y, const float* table, const int32_t* ids, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, T * C) y[i] = table[int64_t{ids[i / C]} * C + i % C];
}
GPU_KERNEL void k_embedding_backward(float* dtable, const float* dy, const int32_t* ids, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, T * C) atomicAdd(&dtable[int64_t{ids[i / C]} * C + i % C], dy[i]);
}
// HF rotate_half: pairs (j, j + half) of each head turn by pos·theta^(−2j/head_dim) / factors[j]
// (factors null: 1).
GPU_KERNEL void k_rope(float* x, const int32_t* pos, int64_t T, int64_t cols, int n_heads, int head_dim, float theta,
                       const float* factors) {
  const int half = head_dim / 2;
  ARWKV_FOR_FLAT(i, T * n_heads * half) {
    const int64_t t = i / (n_heads * half);
    const int h = static_cast<int>(i / half % n_heads), j = static_cast<int>(i % half);
    const double angle =
        pos[t] * pow(static_cast<double>(theta), -2.0 * j / head_dim) / (factors ? static_cast<double>(factors[j]) : 1.0);
    const double c = cos(angle), s = sin(angle);
    float* p = x + t * cols + int64_t{h} * head_dim;
    const double a = p[j], b = p[j + half];
    p[j] = static_cast<float>(a * c - b * s);
    p[j + half] = static_cast<float>(a * s + b * c);
  }
}
GPU_KERNEL void k_adamw(float* param, const float* grad, float* m, float* v, float lr, float beta1, float beta2,
                        float eps, float weight_decay, double c1, double c2, int64_t n) {
  ARWKV_FOR_FLAT(i, n) {
    const double g = grad[i];
    const double mi = beta1 * static_cast<double>(m[i]) + (1.0 - beta1) * g;
    const double vi = beta2 * static_cast<double>(v[i]) + (1.0 - beta2) * g * g;
    const double p = param[i] * (1.0 - static_cast<double>(lr) * weight_decay);
    param[i] = static_cast<float>(p - lr * (mi / c1) / (sqrt(vi / c2) + eps));
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}
// acc[0] += Σ x², one double partial sum per block.
GPU_KERNEL void k_sum_squares(float* acc, const float* x, int64_t n) {
  GPU_SHARED double red[256];
  double s = 0.0;
  ARWKV_FOR_FLAT(i, n) s += static_cast<double>(x[i]) * x[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) atomicAdd(acc, static_cast<float>(s));
}

// ---- norms (one block of 256 per row) -----------------------------------------------------------

GPU_KERNEL void k_rmsnorm(float* y, const float* x, const float* w, int64_t R, int64_t C, float eps) {
  GPU_SHARED double red[256];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float* xr = x + r * C;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += static_cast<double>(xr[c]) * xr[c];
    ss = block_sum(ss, red);
    const double inv = 1.0 / sqrt(ss / static_cast<double>(C) + eps);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[r * C + c] = static_cast<float>(xr[c] * inv * w[c]);
  }
}

// dx = s·(dy ⊙ w) − x·s³·mean(dy ⊙ w ⊙ x), dw += Σ_rows dy ⊙ x·s (ops.h); dx or dw may be null.
GPU_KERNEL void k_rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t R,
                                   int64_t C, float eps, bool accumulate_dx) {
  GPU_SHARED double red[256];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float *xr = x + r * C, *gr = dy + r * C;
    double ss = 0.0, dot = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      ss += static_cast<double>(xr[c]) * xr[c];
      dot += static_cast<double>(gr[c]) * w[c] * xr[c];
    }
    ss = block_sum(ss, red);
    dot = block_sum(dot, red);
    const double s = 1.0 / sqrt(ss / static_cast<double>(C) + eps), mean = dot / static_cast<double>(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      if (dx) {
        const double g = s * gr[c] * w[c] - xr[c] * s * s * s * mean;
        dx[r * C + c] = static_cast<float>(accumulate_dx ? dx[r * C + c] + g : g);
      }
      if (dw) atomicAdd(&dw[c], static_cast<float>(gr[c] * xr[c] * s));
    }
  }
}

// ---- attention: one block of 128 per (query, head), keys in tiles of 128 with an online softmax ---
// (no score matrix in memory; head_dim ≤ 256: each thread owns output dims tid and tid + 128).

constexpr int kAttnTile = 128;

GPU_KERNEL void k_attention(float* out, const float* q, const float* k, const float* v, const int32_t* key_start,
                            int64_t q_cols, int64_t kv_cols, int64_t out_cols, int head_dim, int group,
                            int64_t q_offset, float scale) {
  GPU_SHARED float qs[2 * kAttnTile];
  GPU_SHARED float p[kAttnTile];
  GPU_SHARED float red[kAttnTile];
  const int64_t t = blockIdx.x;
  const int h = static_cast<int>(blockIdx.y), tid = static_cast<int>(threadIdx.x);
  const int64_t last = q_offset + t, first = key_start ? key_start[t] : 0;
  const int64_t kv_off = int64_t{h / group} * head_dim;
  for (int i = tid; i < head_dim; i += kAttnTile) qs[i] = q[t * q_cols + int64_t{h} * head_dim + i];
  gpu_sync();
  float m = -INFINITY, l = 0.0f, acc0 = 0.0f, acc1 = 0.0f;
  for (int64_t j0 = first; j0 <= last; j0 += kAttnTile) {
    const int64_t j = j0 + tid;
    float s = -INFINITY;
    if (j <= last) {
      const float* kr = k + j * kv_cols + kv_off;
      float dot = 0.0f;
      for (int i = 0; i < head_dim; ++i) dot += qs[i] * kr[i];
      s = dot * scale;
    }
    const float m_new = fmaxf(m, block_max(s, red));
    const float corr = expf(m - m_new);  // 0 on the first tile (m = −inf)
    const float pj = j <= last ? expf(s - m_new) : 0.0f;
    p[tid] = pj;
    l = l * corr + block_sum(pj, red);  // its barriers also publish p
    acc0 *= corr;
    acc1 *= corr;
    const int64_t n_keys = last - j0 + 1 < kAttnTile ? last - j0 + 1 : kAttnTile;
    for (int64_t jj = 0; jj < n_keys; ++jj) {
      const float* vr = v + (j0 + jj) * kv_cols + kv_off;
      if (tid < head_dim) acc0 += p[jj] * vr[tid];
      if (tid + kAttnTile < head_dim) acc1 += p[jj] * vr[tid + kAttnTile];
    }
    gpu_sync();  // p is rewritten by the next tile
    m = m_new;
  }
  float* o = out + t * out_cols + int64_t{h} * head_dim;
  if (tid < head_dim) o[tid] = acc0 / l;
  if (tid + kAttnTile < head_dim) o[tid + kAttnTile] = acc1 / l;
}

// The same attention for head_dim ≤ 128 with a block of 128 threads per (16 queries, head): keys
// and values come into shared memory 32 at a time and serve all 16 queries, so each key row is read
// from memory once per 16 queries instead of once per query. Thread t owns query t / 8 and, of its
// output, dims t % 8 + 8u; scores are 4 per thread; each query's online-softmax bookkeeping is done
// by one thread per query between barriers.
constexpr int kAttnQ = 16, kAttnK = 32, kAttnMaxDim = 128;

GPU_KERNEL void k_attention_tiled(float* out, const float* q, const float* k, const float* v, const int32_t* key_start,
                                  int64_t T, int64_t q_cols, int64_t kv_cols, int64_t out_cols, int head_dim,
                                  int group, int64_t q_offset, float scale) {
  GPU_SHARED float qs[kAttnQ][kAttnMaxDim];
  GPU_SHARED float ks[kAttnK][kAttnMaxDim + 1];
  GPU_SHARED float vs[kAttnK][kAttnMaxDim];
  GPU_SHARED float p[kAttnQ][kAttnK];
  GPU_SHARED float m_row[kAttnQ], l_row[kAttnQ], corr_row[kAttnQ];
  GPU_SHARED int64_t first_row[kAttnQ];
  const int tid = static_cast<int>(threadIdx.x), qi = tid / 8, lane = tid % 8;
  const int64_t t0 = int64_t{blockIdx.x} * kAttnQ;
  const int h = static_cast<int>(blockIdx.y);
  const int64_t kv_off = int64_t{h / group} * head_dim;
  const int n_q = static_cast<int>(T - t0 < kAttnQ ? T - t0 : kAttnQ);
  for (int e = tid; e < kAttnQ * head_dim; e += blockDim.x) {
    const int r = e / head_dim, j = e % head_dim;
    qs[r][j] = r < n_q ? q[(t0 + r) * q_cols + int64_t{h} * head_dim + j] : 0.0f;
  }
  if (tid < kAttnQ) {
    first_row[tid] = tid < n_q && key_start ? key_start[t0 + tid] : 0;
    m_row[tid] = -INFINITY;
    l_row[tid] = 0.0f;
  }
  gpu_sync();
  int64_t lo = first_row[0];
  for (int r = 1; r < n_q; ++r) lo = first_row[r] < lo ? first_row[r] : lo;
  const int64_t hi = q_offset + t0 + n_q - 1;  // the last key any query here sees
  const int64_t my_last = q_offset + t0 + qi, my_first = first_row[qi];
  float acc[kAttnMaxDim / 8];
  GPU_UNROLL for (int u = 0; u < kAttnMaxDim / 8; ++u) acc[u] = 0.0f;
  for (int64_t k0 = lo; k0 <= hi; k0 += kAttnK) {
    for (int e = tid; e < kAttnK * head_dim; e += blockDim.x) {
      const int r = e / head_dim, j = e % head_dim;
      const bool in = k0 + r <= hi;
      ks[r][j] = in ? k[(k0 + r) * kv_cols + kv_off + j] : 0.0f;
      vs[r][j] = in ? v[(k0 + r) * kv_cols + kv_off + j] : 0.0f;
    }
    gpu_sync();
    for (int c = lane; c < kAttnK; c += 8) {  // scores of query qi against keys c
      const int64_t key = k0 + c;
      float s = -INFINITY;
      if (qi < n_q && key >= my_first && key <= my_last) {
        float dot = 0.0f;
        for (int j = 0; j < head_dim; ++j) dot += qs[qi][j] * ks[c][j];
        s = dot * scale;
      }
      p[qi][c] = s;
    }
    gpu_sync();
    if (tid < kAttnQ) {  // one thread per query: the online softmax over this tile
      float mx = m_row[tid];
      for (int c = 0; c < kAttnK; ++c) mx = fmaxf(mx, p[tid][c]);
      float sum = 0.0f;
      for (int c = 0; c < kAttnK; ++c) {
        const float e = mx == -INFINITY ? 0.0f : expf(p[tid][c] - mx);
        p[tid][c] = e;
        sum += e;
      }
      const float corr = mx == -INFINITY ? 1.0f : expf(m_row[tid] - mx);
      corr_row[tid] = corr;
      l_row[tid] = l_row[tid] * corr + sum;
      m_row[tid] = mx;
    }
    gpu_sync();
    const float corr = corr_row[qi];
    GPU_UNROLL for (int u = 0; u < kAttnMaxDim / 8; ++u) {
      const int j = lane + 8 * u;
      if (j < head_dim) {
        float a = acc[u] * corr;
        for (int c = 0; c < kAttnK; ++c) a += p[qi][c] * vs[c][j];
        acc[u] = a;
      }
    }
    gpu_sync();  // ks, vs and p are rewritten by the next tile
  }
  if (qi < n_q) {
    float* o = out + (t0 + qi) * out_cols + int64_t{h} * head_dim;
    const float inv = 1.0f / l_row[qi];
    GPU_UNROLL for (int u = 0; u < kAttnMaxDim / 8; ++u) {
      const int j = lane + 8 * u;
      if (j < head_dim) o[j] = acc[u] * inv;
    }
  }
}

// ---- token shift (ops.h) ------------------------------------------------------------------------

GPU_FN float shifted_prev(const float* x, const float* x_prev, const int32_t* reset, int64_t b, int64_t t, int64_t c,
                          int64_t T, int64_t C) {
  if (reset && reset[b * T + t]) return 0.0f;
  return t == 0 ? x_prev[b * C + c] : x[(b * T + t - 1) * C + c];
}

GPU_KERNEL void k_token_shift(float* out, const float* x, const float* x_prev, const float* mix, const int32_t* reset,
                              int64_t P, int64_t B, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, P * B * T * C) {
    const int64_t c = i % C, t = i / C % T, b = i / (C * T) % B, p = i / (C * T * B);
    const float xi = x[(b * T + t) * C + c];
    out[i] = xi + (shifted_prev(x, x_prev, reset, b, t, c, T, C) - xi) * mix[p * C + c];
  }
}
GPU_KERNEL void k_store_last(float* x_prev, const float* x, int64_t B, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, B * C) x_prev[i] = x[(i / C * T + T - 1) * C + i % C];
}
GPU_KERNEL void k_token_shift_backward_dx(float* dx, const float* dx_prev, const float* dout, const float* mix,
                                          const int32_t* reset, int64_t P, int64_t B, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, B * T * C) {
    const int64_t c = i % C, t = i / C % T, b = i / (C * T);
    const bool next_sees = t + 1 < T && !(reset && reset[b * T + t + 1]);
    double s = t == T - 1 && dx_prev ? dx_prev[b * C + c] : 0.0;
    for (int64_t p = 0; p < P; ++p) {
      const float* g = dout + ((p * B + b) * T + t) * C + c;
      s += static_cast<double>(g[0]) * (1.0f - mix[p * C + c]);
      if (next_sees) s += static_cast<double>(g[C]) * mix[p * C + c];
    }
    dx[i] = static_cast<float>(s);
  }
}
GPU_KERNEL void k_token_shift_backward_dmix(float* dmix, const float* dout, const float* x, const float* x_prev,
                                            const int32_t* reset, int64_t P, int64_t B, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, P * C) {
    const int64_t p = i / C, c = i % C;
    double s = 0.0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const float xi = x[(b * T + t) * C + c];
        s += static_cast<double>(dout[((p * B + b) * T + t) * C + c]) *
             (shifted_prev(x, x_prev, reset, b, t, c, T, C) - xi);
      }
    dmix[i] = static_cast<float>(dmix[i] + s);
  }
}
GPU_KERNEL void k_token_shift_backward_dx_prev(float* dx_prev, const float* dout, const float* mix, const int32_t* reset,
                                               int64_t P, int64_t B, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, B * C) {
    const int64_t b = i / C, c = i % C;
    double s = 0.0;
    for (int64_t p = 0; p < P && !(reset && reset[b * T]); ++p)
      s += static_cast<double>(dout[((p * B + b) * T) * C + c]) * mix[p * C + c];
    dx_prev[i] = static_cast<float>(s);
  }
}

// ---- the steps around the recurrence: grid (rows, heads), a power-of-two block ≥ N ----------------

constexpr double kDecayScale = 0.60653065971263342;  // e^−0.5

GPU_KERNEL void k_wkv7_prepare(float* w_out, float* a_out, float* b_out, float* k, float* v, const float* w_logit,
                               const float* a_logit, const float* v_first, const float* v_logit, const float* k_k,
                               const float* k_a, int64_t C, int N) {
  double* red = gpu_dyn_shared<double>();
  const int j = static_cast<int>(threadIdx.x);
  const bool on = j < N;
  const int64_t c = int64_t{blockIdx.y} * N + j, o = int64_t{blockIdx.x} * C + c;
  const double n = on ? static_cast<double>(k[o]) * k_k[c] : 0.0;
  const double norm = sqrt(block_sum(n * n, red));
  if (!on) return;
  const double kk = n / (norm > 1e-12 ? norm : 1e-12), iclr = sigmoid_d(a_logit[o]);
  w_out[o] = static_cast<float>(exp(-kDecayScale * sigmoid_d(w_logit[o])));
  if (v_first) v[o] = static_cast<float>(v[o] + (static_cast<double>(v_first[o]) - v[o]) * sigmoid_d(v_logit[o]));
  k[o] = static_cast<float>(k[o] * (1.0 + (iclr - 1.0) * k_a[c]));
  a_out[o] = static_cast<float>(-kk);
  b_out[o] = static_cast<float>(kk * iclr);
}

// See the reference (cpu/ref/student_backward_ref.cpp) for the formulas; k and v as before the forward.
GPU_KERNEL void k_wkv7_prepare_backward(const float* k, const float* v, const float* w_logit, const float* a_logit,
                                        const float* v_first, const float* v_logit, const float* k_k, const float* k_a,
                                        const float* dw, const float* da, const float* db, float* dk, float* dv,
                                        float* dw_logit, float* da_logit, float* dv_first, float* dv_logit,
                                        float* dk_k, float* dk_a, int64_t C, int N) {
  double* red = gpu_dyn_shared<double>();
  const int j = static_cast<int>(threadIdx.x);
  const bool on = j < N;
  const int64_t c = int64_t{blockIdx.y} * N + j, o = int64_t{blockIdx.x} * C + c;
  const double kv = on ? k[o] : 0.0, n = on ? kv * k_k[c] : 0.0;
  const double raw_norm = sqrt(block_sum(n * n, red));
  const double norm = raw_norm > 1e-12 ? raw_norm : 1e-12, kk = n / norm;
  const double iclr = on ? sigmoid_d(a_logit[o]) : 0.0;
  const double dkk = on ? -static_cast<double>(da[o]) + db[o] * iclr : 0.0;
  const double dot = block_sum(kk * dkk, red);
  if (!on) return;
  const double dn = (norm <= 1e-12 ? dkk : dkk - kk * dot) / norm;
  const double dk1 = dk[o], ka = k_a[c], sw = sigmoid_d(w_logit[o]);
  const double diclr = db[o] * kk + dk1 * kv * ka, w = exp(-kDecayScale * sw);
  dw_logit[o] = static_cast<float>(dw[o] * w * -kDecayScale * sw * (1.0 - sw));
  da_logit[o] = static_cast<float>(diclr * iclr * (1.0 - iclr));
  dk[o] = static_cast<float>(dk1 * (1.0 + (iclr - 1.0) * ka) + dn * k_k[c]);
  if (dk_k) atomicAdd(&dk_k[c], static_cast<float>(dn * kv));
  if (dk_a) atomicAdd(&dk_a[c], static_cast<float>(dk1 * kv * (iclr - 1.0)));
  if (!v_first) return;
  const double dv1 = dv[o], s = sigmoid_d(v_logit[o]);
  dv[o] = static_cast<float>(dv1 * (1.0 - s));
  dv_first[o] = static_cast<float>(dv_first[o] + dv1 * s);
  dv_logit[o] = static_cast<float>(dv1 * (static_cast<double>(v_first[o]) - v[o]) * s * (1.0 - s));
}

// y ← (GroupNorm(y) ⊙ ln_w + ln_b) + (Σ r·k·r_k)·v, ⊙ g; ln_w, ln_b, g may be null.
GPU_KERNEL void k_wkv7_output(float* y, const float* r, const float* k, const float* v, const float* r_k,
                              const float* g, const float* ln_w, const float* ln_b, float eps, int64_t C, int N) {
  double* red = gpu_dyn_shared<double>();
  const int j = static_cast<int>(threadIdx.x);
  const bool on = j < N;
  const int64_t c = int64_t{blockIdx.y} * N + j, o = int64_t{blockIdx.x} * C + c;
  double yv = on ? y[o] : 0.0;
  if (ln_w) {
    const double mean = block_sum(yv, red) / N;
    const double dev = on ? yv - mean : 0.0;
    const double inv = 1.0 / sqrt(block_sum(dev * dev, red) / N + eps);
    if (on) yv = dev * inv * ln_w[c] + ln_b[c];
  }
  const double bonus = block_sum(on ? static_cast<double>(r[o]) * k[o] * r_k[c] : 0.0, red);
  if (!on) return;
  const double out = yv + bonus * v[o];
  y[o] = static_cast<float>(g ? out * g[o] : out);
}

GPU_KERNEL void k_wkv7_output_backward(float* dy, float* dr, float* dk, float* dv, float* dr_k, float* dg, float* dln_w,
                                       float* dln_b, const float* y, const float* r, const float* k, const float* v,
                                       const float* r_k, const float* g, const float* ln_w, const float* ln_b,
                                       float eps, int64_t C, int N) {
  double* red = gpu_dyn_shared<double>();
  const int j = static_cast<int>(threadIdx.x);
  const bool on = j < N;
  const int64_t c = int64_t{blockIdx.y} * N + j, o = int64_t{blockIdx.x} * C + c;
  const double yv = on ? y[o] : 0.0;
  double yhat = yv, inv = 1.0;
  if (ln_w) {
    const double mean = block_sum(yv, red) / N;
    const double dev = on ? yv - mean : 0.0;
    inv = 1.0 / sqrt(block_sum(dev * dev, red) / N + eps);
    yhat = dev * inv;
  }
  const double rkj = on ? r_k[c] : 0.0;
  const double beta = block_sum(on ? static_cast<double>(r[o]) * k[o] * rkj : 0.0, red);
  double dy2 = 0.0;
  if (on) {
    const double y1 = ln_w ? yhat * ln_w[c] + ln_b[c] : yhat, dout = dy[o];
    dy2 = g ? dout * g[o] : dout;
    if (g) dg[o] = static_cast<float>(dout * (y1 + beta * v[o]));
  }
  const double dbeta = block_sum(on ? dy2 * v[o] : 0.0, red);
  if (on) {
    dv[o] = static_cast<float>(dv[o] + beta * dy2);
    dr[o] = static_cast<float>(dr[o] + dbeta * k[o] * rkj);
    dk[o] = static_cast<float>(dk[o] + dbeta * r[o] * rkj);
    if (dr_k) atomicAdd(&dr_k[c], static_cast<float>(dbeta * r[o] * k[o]));
  }
  if (!ln_w) {
    if (on) dy[o] = static_cast<float>(dy2);
    return;
  }
  if (on) {
    if (dln_w) atomicAdd(&dln_w[c], static_cast<float>(dy2 * yhat));
    if (dln_b) atomicAdd(&dln_b[c], static_cast<float>(dy2));
  }
  const double dyh = on ? dy2 * ln_w[c] : 0.0;
  const double mean_d = block_sum(dyh, red) / N, mean_dy = block_sum(dyh * yhat, red) / N;
  if (on) dy[o] = static_cast<float>((dyh - mean_d - yhat * mean_dy) * inv);
}

// ---- losses: one block of 256 per row of logits -------------------------------------------------

constexpr int kLossBlock = 256;

GPU_KERNEL void k_cross_entropy(float* loss, float* dl, const float* logits, const int32_t* targets, const int32_t* mask,
                                int64_t R, int64_t V, float grad_scale) {
  GPU_SHARED double red[kLossBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float* z = logits + r * V;
    const bool on = !mask || mask[r] != 0;
    const int32_t target = targets[r];
    const double z_target = on ? z[target] : 0.0;
    double mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmax(mx, static_cast<double>(z[j]));
    mx = block_max(mx, red);
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) sum += exp(z[j] - mx);
    const double lse = mx + log(block_sum(sum, red));
    if (threadIdx.x == 0) loss[r] = on ? static_cast<float>(lse - z_target) : 0.0f;
    if (!dl) continue;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      const double g = exp(z[j] - lse) - (j == target ? 1.0 : 0.0);
      dl[r * V + j] = on ? static_cast<float>(grad_scale * g) : 0.0f;
    }
  }
}

GPU_KERNEL void k_kl_div(float* loss, float* dl, const float* logits, const float* teacher, const int32_t* mask,
                         int64_t R, int64_t V, float temperature, float grad_scale) {
  GPU_SHARED double red[kLossBlock];
  const double tau = temperature;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float *zs = logits + r * V, *zt = teacher + r * V;
    const bool on = !mask || mask[r] != 0;
    double ms = -INFINITY, mt = -INFINITY;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      ms = fmax(ms, zs[j] / tau);
      mt = fmax(mt, zt[j] / tau);
    }
    ms = block_max(ms, red);
    mt = block_max(mt, red);
    double ss = 0.0, st = 0.0;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      ss += exp(zs[j] / tau - ms);
      st += exp(zt[j] / tau - mt);
    }
    const double lse_s = ms + log(block_sum(ss, red)), lse_t = mt + log(block_sum(st, red));
    double kl = 0.0;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      const double ls = zs[j] / tau - lse_s, lt = zt[j] / tau - lse_t, pt = exp(lt);
      if (pt > 0.0) kl += pt * (lt - ls);
      if (dl) dl[r * V + j] = on ? static_cast<float>(grad_scale * tau * (exp(ls) - pt)) : 0.0f;
    }
    kl = block_sum(kl, red);
    if (threadIdx.x == 0) loss[r] = on ? static_cast<float>(tau * tau * kl) : 0.0f;
  }
}

GPU_KERNEL void k_kl_div_topk(float* loss, float* dl, const float* logits, const int32_t* ids, const float* teacher,
                              const int32_t* mask, int64_t R, int64_t V, int64_t K, float temperature,
                              float grad_scale) {
  GPU_SHARED double red[kLossBlock];
  const double tau = temperature;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float *zs = logits + r * V, *zt = teacher + r * K;
    const int32_t* id = ids + r * K;
    const bool on = !mask || mask[r] != 0;
    double mt = -INFINITY, st = 0.0;  // the teacher's K logits: every thread walks them
    for (int64_t q = 0; q < K; ++q) mt = fmax(mt, zt[q] / tau);
    for (int64_t q = 0; q < K; ++q) st += exp(zt[q] / tau - mt);
    const double lse_t = mt + log(st);
    double ms = -INFINITY;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) ms = fmax(ms, zs[j] / tau);
    ms = block_max(ms, red);
    double ss = 0.0;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) ss += exp(zs[j] / tau - ms);
    const double lse_s = ms + log(block_sum(ss, red));
    double kl = 0.0;
    for (int64_t q = threadIdx.x; q < K && on; q += blockDim.x) {
      const double lt = zt[q] / tau - lse_t, pt = exp(lt);
      if (pt > 0.0) kl += pt * (lt - (zs[id[q]] / tau - lse_s));
    }
    kl = block_sum(kl, red);  // every read of zs is done before dl (which may alias it) is written
    if (threadIdx.x == 0) loss[r] = on ? static_cast<float>(tau * tau * kl) : 0.0f;
    if (!dl) continue;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
      dl[r * V + j] = on ? static_cast<float>(grad_scale * tau * exp(zs[j] / tau - lse_s)) : 0.0f;
    gpu_sync();
    for (int64_t q = threadIdx.x; q < K && on; q += blockDim.x) {
      const double pt = exp(zt[q] / tau - lse_t);
      dl[r * V + id[q]] = static_cast<float>(dl[r * V + id[q]] - grad_scale * tau * pt);
    }
    gpu_sync();
  }
}

GPU_KERNEL void k_align_loss(float* loss, float* ds, const float* student, const float* teacher, const int32_t* mask,
                             int64_t R, int64_t C, float grad_scale) {
  GPU_SHARED double red[kLossBlock];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const bool on = !mask || mask[r] != 0;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const double diff = static_cast<double>(student[r * C + c]) - teacher[r * C + c];
      ss += diff * diff;
      if (ds) ds[r * C + c] = on ? static_cast<float>(grad_scale * 2.0 * diff / static_cast<double>(C)) : 0.0f;
    }
    ss = block_sum(ss, red);
    if (threadIdx.x == 0) loss[r] = on ? static_cast<float>(ss / static_cast<double>(C)) : 0.0f;
  }
}
