// Argument checks shared by every backend: each op validates its views (device, dtype, shape)
// before touching memory, so all backends reject the same mistakes with the same messages.
#pragma once

#include <cmath>

#include "backend/ops.h"

namespace arwkv::op_checks {

void on_device(const char* op, Device dev, const Tensor& t, DType dtype);
// A weight of matmul or embedding: 2-D, F32 or compact (F16, BF16, a block type) in whole blocks.
void weight(const char* op, Device dev, const Tensor& w);
void matmul(Device dev, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
void embedding(Device dev, const Tensor& y, const Tensor& table, const Tensor& ids);
void rmsnorm(Device dev, const Tensor& y, const Tensor& x, const Tensor& w);
void rope(Device dev, const Tensor& x, const Tensor& pos, int n_heads, int head_dim, const Tensor& freq_factors);
void attention(Device dev, const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& key_start, const AttentionArgs& a);
// wkv7_forward (reset non-null: [B, T, C] inputs) or wkv7_decode (reset null: [B, C] inputs).
void wkv7(Device dev, const Tensor& y, const Tensor& state, const Tensor& r, const Tensor& w, const Tensor& k,
          const Tensor& v, const Tensor& a, const Tensor& b, const Tensor* reset);
void same_shape(const char* op, Device dev, const Tensor& y, const Tensor& a, const Tensor& b);
void wkv7_backward(Device dev, const Wkv7Grads& d, const Tensor& dy, const Tensor& state_in, const Tensor& r,
                   const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                   const Tensor& reset);

// Training ops (ops.h, "Training"): backward passes, losses, optimiser steps.
void matmul_backward(Device dev, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                     const Tensor& x, const Tensor& w);
void embedding_backward(Device dev, const Tensor& dtable, const Tensor& dy, const Tensor& ids);
void rmsnorm_backward(Device dev, const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                      const Tensor& w);
void token_shift_backward(Device dev, const Tensor& dx, const Tensor& dx_prev, const Tensor& dmix,
                          const Tensor& dout, const Tensor& x, const Tensor& x_prev, const Tensor& mix,
                          const Tensor& reset);
void wkv7_prepare_backward(Device dev, const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d);
void wkv7_output_backward(Device dev, const Wkv7OutputGrads& d, const Tensor& y, const Tensor& r, const Tensor& k,
                          const Tensor& v, const Tensor& r_k, const Tensor& g, const Tensor& ln_w,
                          const Tensor& ln_b);
// A loss over rows of scores [R, V] (logits, or the align loss's activations): loss F32 [R], dscores
// empty or shaped like scores, mask empty or I32 [R].
void loss_rows(const char* op, Device dev, const Tensor& loss, const Tensor& dscores, const Tensor& scores,
               const Tensor& mask);
void adamw_step(Device dev, const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, int64_t step);

inline bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }
inline float attention_scale(const AttentionArgs& a) {
  return a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
}

}  // namespace arwkv::op_checks
