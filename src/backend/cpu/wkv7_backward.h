// The fast CPU form of the WKV-7 backward pass; semantics of Ops::wkv7_backward in backend/ops.h.
// Arguments are checked there.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                   Tensor a, Tensor b, Tensor reset);

}  // namespace arwkv::cpu
