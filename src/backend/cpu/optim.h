// The fast CPU forms of the optimiser's steps: AdamW, a sum of squares for gradient clipping, and
// scaling. Element-wise over OpenMP threads. Semantics in backend/ops.h; arguments are checked by
// the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step);
void sum_squares(Tensor acc, Tensor x);
void scale(Tensor x, float s);

}  // namespace arwkv::cpu
