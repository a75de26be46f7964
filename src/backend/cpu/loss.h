// The fast CPU forms of the losses fused with their softmax (cross-entropy, KL over the full
// vocabulary and over the teacher's top k, the align loss): rows split over OpenMP threads, fp32
// exponentials with double sums. Semantics in backend/ops.h; arguments are checked by the caller.
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale);
void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
            float grad_scale);
void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                 float temperature, float grad_scale);
void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale);

}  // namespace arwkv::cpu
