// The parts of attention that differ by family (model/config.h), shared by the teacher and the
// student's kept attention layers: the per-head q/k RMSNorm before RoPE, the sliding window, and
// RoPE's frequency factors.
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

// The first key a query at key index `at` may see: its document's first (doc_start), or the first
// within the family's sliding window.
inline int32_t first_key(const ModelConfig& c, int64_t doc_start, int64_t at) {
  return static_cast<int32_t>(c.sliding_window > 0 ? std::max(doc_start, at - c.sliding_window + 1) : doc_start);
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
