// Argument checks of the student time-mixing ops (Ops::token_shift, tanh, sigmoid, wkv7_prepare,
// wkv7_output), shared by every backend so all reject the same mistakes with the same messages.
#pragma once

#include "backend/ops.h"

namespace arwkv::op_checks {

void token_shift(Device dev, const Tensor& out, const Tensor& x, const Tensor& x_prev, const Tensor& mix,
                 const Tensor& reset);
void unary(const char* op, Device dev, const Tensor& y, const Tensor& x);
void wkv7_prepare(Device dev, const Wkv7PrepareArgs& a);
void wkv7_output(Device dev, const Tensor& y, const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& r_k,
                 const Tensor& g, const Tensor& ln_w, const Tensor& ln_b);

}  // namespace arwkv::op_checks
