// The fast CPU forms of the WKV-7 recurrence (whole sequence and one-token decode); the semantics
// are those of Ops::wkv7_forward / Ops::wkv7_decode in backend/ops.h. Arguments are checked there.
#pragma once

#include "core/tensor.h"

namespace arwkv::cpu {

void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                  Tensor reset);
void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b);

}  // namespace arwkv::cpu
