// Internals of StudentBackprop shared by its setup and its passes: the activations one layer keeps
// for its backward, and the per-pass scratch (residual stream, states, gradients of activations).
#pragma once

#include "train/student_backward.h"

namespace arwkv {

// One layer's saved activations, [R, C] unless noted (R = B·T rows).
struct StudentBackprop::Acts {
  Tensor xn;                                      // RMSNorm₁(x): the time-mix (or attention) input
  Tensor mixed;                                   // [P, B, T, C]: x_r, x_w, x_k, x_v, x_a (, x_g)
  Tensor r, k_in, v_in;                           // the projections, before wkv7_prepare
  Tensor k, v, w, a, b;                           // the recurrence's inputs (after prepare)
  Tensor hw, ha, hv, hg;                          // LoRA hiddens [R, D]: tanh(x_w·w1), x_a·a1, x_v·v1, σ(x_g·g1)
  Tensor w_logit, a_logit, v_logit, g;
  Tensor y_wkv, y;                                // the WKV-7 output, and after wkv7_output
  Tensor x_mid, xn2;                              // x + TimeMix(xn), RMSNorm₂(x_mid)
  Tensor gate, up, h;                             // [R, F]: MLP gate, up, act(gate) ⊙ up
  Tensor o_pre, m_pre;                            // the block's and the MLP's outputs before their post
                                                  // norms (families that have them)
};

// In an align pass (time-mix blocks on their own) resid, xf, dx, dxf, dxn2, dhf, dgate, dup and the
// kept-attention buffers stay empty.
struct StudentBackprop::Scratch {
  Tensor ids, resets, pos, key_start;             // I32 [R] (positions and first keys are row-relative)
  Tensor key_start_local;                         // I32 [R]: first keys within the sliding window
  Tensor resid;                                   // [L+1, R, C]: every layer's input, and the last output
  Tensor xf, o;                                   // final normed hidden; a block's output
  Tensor v_first, dv_first;
  Tensor state, zero_state;                       // [B, H, N, N]
  Tensor x_prev, zero_x_prev;                     // [B, C]
  Tensor zeros;                                   // [R, C], all zero
  Tensor q, kq, vq, att;                          // kept attention: [R, H·d], [R, Hkv·d] ×2, [R, H·d]
  Tensor dx, dxf, dxn, dmixed;                    // [R, C] and [P, B, T, C]
  Tensor dr, dk, dv, dw, da, db, dy, dw_logit, da_logit, dv_logit, dg;
  Tensor dh;                                      // [R, largest LoRA rank]
  Tensor dxn2, dhf, dgate, dup;                   // [R, C], [R, F] ×3
};

}  // namespace arwkv
