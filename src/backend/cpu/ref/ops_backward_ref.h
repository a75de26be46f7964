// The scalar reference of the backward passes of the dense ops (matmul, embedding, rmsnorm,
// silu_mul): plain loops, everything in double, fp32 only where a result is stored. Semantics of
// the Ops::*_backward calls in backend/ops.h; arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::ref {

void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx);
void embedding_backward(Tensor dtable, Tensor dy, Tensor ids);
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx);
void silu_mul_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up);

}  // namespace arwkv::ref
