// The CPU attention kernel (see attention.cpp).
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

// Causal GQA attention as specified by Ops::attention. scratch must hold
// max_threads() · (k.rows() + head_dim) floats.
void attention(Tensor out, Tensor q, Tensor k, Tensor v, const int32_t* key_start, const AttentionArgs& a,
               float* scratch);

int max_threads();

}  // namespace arwkv::cpu
