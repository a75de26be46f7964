// The scalar reference of the WKV-7 recurrence: plain loops, double accumulation. Semantics of
// Ops::wkv7_forward / Ops::wkv7_decode in backend/ops.h.
#pragma once

#include "core/tensor.h"

namespace arwkv::ref {

void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                  Tensor reset);
void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b);

}  // namespace arwkv::ref
