// The scalar reference of the training ops that are not backward passes: the losses fused with
// their softmax, and the optimiser's steps (AdamW, sum of squares, scale). Plain loops, everything
// in double. Semantics in backend/ops.h; arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::ref {

void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale);
void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
            float grad_scale);
void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                 float temperature, float grad_scale);
void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale);

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step);
void sum_squares(Tensor acc, Tensor x);
void scale(Tensor x, float s);

}  // namespace arwkv::ref
