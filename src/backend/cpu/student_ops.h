// The fast CPU forms of the student time-mixing ops (semantics in backend/ops.h): fp32, rows split
// over OpenMP threads, inner loops left to the vectoriser. Arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset);
void tanh(Tensor y, Tensor x);
void sigmoid(Tensor y, Tensor x);
void wkv7_prepare(const Wkv7PrepareArgs& a);
void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b, float eps);

}  // namespace arwkv::cpu
