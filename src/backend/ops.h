// The one op interface. Model, inference and training code call these; each backend (the scalar
// reference in cpu/ref, the fast CPU backend in cpu, later CUDA) implements all of them, and the
// tests run every op of every backend against the reference.
//
// Conventions: tensors are contiguous row-major views on the backend's device (I32 index tensors
// too); outputs are preallocated by the caller and shape-checked by the backend (a mismatch throws
// arwkv::Error); "rows" are all dims but the last. Linear layers store weights as PyTorch does,
// W[out, in], and compute y = x·Wᵀ (+ b). An Ops object may keep scratch memory between calls: use
// one from one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "core/tensor.h"

namespace arwkv {

struct AttentionArgs {
  int n_heads = 0;         // query heads
  int n_kv_heads = 0;      // key/value heads; divides n_heads (GQA)
  int head_dim = 0;
  int64_t q_offset = 0;    // position of query row 0 among the key rows (KV-cache length before it)
  float scale = 0.0f;      // 0 means 1/sqrt(head_dim)
};

class Ops {
 public:
  virtual ~Ops() = default;
  virtual const char* name() const = 0;
  virtual Device device() const = 0;

  // Memory on the backend's device, and copies between it and the host.
  virtual Buffer alloc(size_t bytes) = 0;
  virtual void upload(Tensor dst, const void* host_src) = 0;
  virtual void download(void* host_dst, Tensor src) = 0;
  virtual void synchronize() {}

  // y[M, N] = x[M, K]·w[N, K]ᵀ (+ bias[N]); with accumulate, y += ...
  virtual void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias = nullptr,
                      bool accumulate = false) = 0;
  // y[T, C] = table[ids[t], :]; ids is I32 [T]; an id outside the table throws.
  virtual void embedding(Tensor y, Tensor table, Tensor ids) = 0;
  // y = x / sqrt(mean(x²) + eps) ⊙ w, per row; computed in fp32.
  virtual void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) = 0;
  // In place on x [T, n_heads·head_dim]; HF rotate_half convention: pairs (i, i + head_dim/2)
  // rotate by angle pos[t]·theta^(-2i/head_dim). pos is I32 [T].
  virtual void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta) = 0;
  // Causal GQA softmax attention. q [T, n_heads·d], k and v [S, n_kv_heads·d], out [T, n_heads·d].
  // Query t sits at key position q_offset + t and sees keys key_start[t] .. q_offset + t, so
  // document boundaries inside a packed sequence are a per-query first key (key_start is I32 [T];
  // an empty tensor, data == nullptr, means 0 for all). Softmax in fp32.
  virtual void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start,
                         const AttentionArgs& args) = 0;
  // y = silu(gate) ⊙ up (y may alias gate or up)
  virtual void silu_mul(Tensor y, Tensor gate, Tensor up) = 0;
  // y = a + b (y may alias a or b)
  virtual void add(Tensor y, Tensor a, Tensor b) = 0;
  virtual void copy(Tensor dst, Tensor src) = 0;

  // ---- RWKV-7 (SPEC §3) -------------------------------------------------------------------------
  // The WKV-7 recurrence over B sequences of T tokens, H heads of size N (C = H·N). Per head, with
  // the state S [N, N] (rows i = value index, columns j = key index):
  //   sa_i = Σ_j S_ij·a_j;   S_ij = S_ij·w_j + sa_i·b_j + v_i·k_j;   y_i = Σ_j S_ij·r_j
  // r, w, k, v, a, b, y: [B, T, C] (w is the decay, in (0, 1); the model passes a = −kk and
  // b = kk ⊙ iclr). state: F32 [B, H, N, N], read and updated in place. reset: I32 [B, T], or empty;
  // a non-zero entry zeroes that sequence's state before its token t (a document boundary).
  virtual void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a,
                            Tensor b, Tensor reset) = 0;
  // One token per sequence: r, w, k, v, a, b, y [B, C]; wkv7_forward with T = 1 and no reset.
  virtual void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a,
                           Tensor b) = 0;
};

// The scalar reference (double accumulation) and the fast CPU backend (OpenBLAS + OpenMP).
std::unique_ptr<Ops> make_reference_ops();
std::unique_ptr<Ops> make_cpu_ops();

}  // namespace arwkv
