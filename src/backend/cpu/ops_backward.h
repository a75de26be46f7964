// The fast CPU forms of the dense ops' backward passes (matmul, embedding, rmsnorm, glu):
// OpenBLAS products split over OpenMP threads, element-wise loops left to the vectoriser.
// Semantics of the Ops::*_backward calls in backend/ops.h; arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx);
void embedding_backward(Tensor dtable, Tensor dy, Tensor ids);
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx);
void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act);

}  // namespace arwkv::cpu
