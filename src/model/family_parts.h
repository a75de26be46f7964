// The parts of a decoder layer that differ by family (model/config.h), shared by the teacher and
// the student: the per-head q/k RMSNorm before RoPE, the sliding window, RoPE's frequency factors,
// the embedding's scale and the norms after attention and MLP.
#pragma once

#include <algorithm>

#include "backend/ops.h"
#include "model/config.h"

namespace arwkv {

// x [T, heads·d] ← RMSNorm over each head's d values, weighted by w [d], in place; nothing when w
// is empty (the family has no such norm).
inline void head_rmsnorm(Ops& ops, Tensor x, const Tensor& w, int64_t heads, int64_t d, float eps) {
  if (!w.data) return;
  const Tensor rows = x.reshape({x.dim(0) * heads, d});
  ops.rmsnorm(rows, rows, w, eps);
}

// The first key a query at key index `at` may see in a layer with this window (0: none): its
// document's first (doc_start), or the first within the window.
inline int32_t first_key(int64_t window, int64_t doc_start, int64_t at) {
  return static_cast<int32_t>(window > 0 ? std::max(doc_start, at - window + 1) : doc_start);
}

// x ← x·s where the family scales its embedding (s ≠ 1).
inline void scale_embedding(Ops& ops, Tensor x, const ModelConfig& c) {
  if (const float s = embed_scale(c); s != 1.0f) ops.scale(x, s);
}

// x ← RMSNorm(x)·w in place where the family has the norm (w present).
inline void post_norm(Ops& ops, Tensor x, const Tensor& w, float eps) {
  if (w.data) ops.rmsnorm(x, x, w, eps);
}

// x += [post-norm] down(act(gate(xn)) ⊙ up(xn)) over xn = RMSNorm(x): the MLP block of a teacher's
// or a student's layer (both name its weights alike). xn [T, C], gate and up [T, F] and o [T, C]
// (used with a post norm only) are scratch.
template <class Layer>
void mlp_block(Ops& ops, const Layer& w, const ModelConfig& c, Tensor x, Tensor xn, Tensor gate, Tensor up, Tensor o) {
  ops.rmsnorm(xn, x, w.mlp_norm, c.rms_eps);
  ops.matmul(gate, xn, w.w_gate);
  ops.matmul(up, xn, w.w_up);
  ops.glu(gate, gate, up, family(c.arch).mlp_activation);
  if (!w.post_mlp_norm.data) return ops.matmul(x, gate, w.w_down, nullptr, /*accumulate=*/true);
  ops.matmul(o, gate, w.w_down);
  post_norm(ops, o, w.post_mlp_norm, c.rms_eps);
  ops.add(x, x, o);
}

// The config's RoPE frequency factors on the device, for ops.rope; an empty tensor when it has none.
struct RopeFactors {
  Buffer buffer;
  Tensor tensor;

  RopeFactors() = default;
  RopeFactors(Ops& ops, const ModelConfig& c) {
    if (c.rope_freq_factors.empty()) return;
    const Shape s{static_cast<int64_t>(c.rope_freq_factors.size())};
    buffer = ops.alloc(static_cast<size_t>(s.numel()) * sizeof(float));
    tensor = Tensor{buffer.data(), s, DType::F32, ops.device()};
    ops.upload(tensor, c.rope_freq_factors.data());
  }
};

}  // namespace arwkv
