// The scalar reference of the backward passes of the dense ops (matmul, embedding, rmsnorm,
// glu) and the activations they share with the forward: plain loops, everything in double, fp32 only where a result is stored. Semantics of
// the Ops::*_backward calls in backend/ops.h; arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::ref {

void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx);
void embedding_backward(Tensor dtable, Tensor dy, Tensor ids);
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx);
void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act);
// act(x) and act'(x) in double.
double activation(Activation act, double x);
double activation_derivative(Activation act, double x);

}  // namespace arwkv::ref
