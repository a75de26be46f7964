// The fast CPU forms of the student ops' backward passes (token_shift, tanh, sigmoid,
// wkv7_prepare, wkv7_output): fp32, rows split over OpenMP threads, inner loops left to the
// vectoriser. Semantics of the Ops::*_backward calls in backend/ops.h; arguments are checked by
// the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                          Tensor reset);
void tanh_backward(Tensor dx, Tensor dy, Tensor y);
void sigmoid_backward(Tensor dx, Tensor dy, Tensor y);
void wkv7_prepare_backward(const Wkv7PrepareArgs& fwd, const Wkv7PrepareGrads& d);
void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                          Tensor ln_w, Tensor ln_b, float eps);

}  // namespace arwkv::cpu
