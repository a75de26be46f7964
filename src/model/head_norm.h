// The per-head RMSNorm of q and k some families apply before RoPE (Family::qk_norm), shared by the
// teacher and the student's kept attention layers.
#pragma once

#include "backend/ops.h"

namespace arwkv {

// x [T, heads·d] ← RMSNorm over each head's d values, weighted by w [d], in place; nothing when w
// is empty (the family has no such norm).
inline void head_rmsnorm(Ops& ops, Tensor x, const Tensor& w, int64_t heads, int64_t d, float eps) {
  if (!w.data) return;
  const Tensor rows = x.reshape({x.dim(0) * heads, d});
  ops.rmsnorm(rows, rows, w, eps);
}

}  // namespace arwkv
