// The scalar reference of the WKV-7 backward pass: plain backward-through-time in double.
// Semantics of Ops::wkv7_backward in backend/ops.h; arguments are checked there.
#pragma once

#include "backend/ops.h"

namespace arwkv::ref {

void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                   Tensor a, Tensor b, Tensor reset);

}  // namespace arwkv::ref
