// Internals of the student shared by its loading and running code: one layer's weight views, the
// activation workspace of a chunk of tokens, and the RNN state.
#pragma once

#include <string>

#include "model/student/student.h"

namespace arwkv {

// Views into the student's weight buffer; a time-mix layer fills the time-mix fields, a hybrid
// layer the attention ones. LoRA matrices are stored transposed from the checkpoint ([out, in],
// ready for Ops::matmul); empty tensors mark what the layer lacks (v* in the first time-mix layer,
// g* without gate, ln_* without group norm, biases without attention bias).
struct Student::Layer {
  bool wkv = false;
  int64_t slot = 0;  // index among the time-mix layers (its state), or among the hybrid layers (its cache)
  Tensor attn_norm, mlp_norm, w_gate, w_up, w_down;
  Tensor post_attn_norm, post_mlp_norm;  // empty where the family has none
  Tensor wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo;  // q/k norms: empty where the family has none
  Tensor mix;  // [P, C]: x_r, x_w, x_k, x_v, x_a (, x_g)
  Tensor receptance, key, value, output;
  Tensor w0, w1, w2, a0, a1, a2, v0, v1, v2, g1, g2;
  Tensor k_k, k_a, r_k, ln_w, ln_b;
};

// Device memory for running up to `rows` tokens at once, carved from one buffer. Tensors are
// sized for `rows`; a pass of T ≤ rows tokens uses the first T·(row size) elements of each.
struct Student::Workspace {
  Buffer buffer;
  int64_t rows = 0;
  Tensor ids, pos, key_start, reset;   // I32 [rows]; key_start: kept attention without a window
  Tensor key_start_local;              // I32 [rows]: kept attention with sliding_window
  Tensor x, xn, o;                     // [rows, C]
  Tensor mixed;                        // [P, rows, C]: the token-shifted inputs x_r, x_w, ...
  Tensor r, k, v, w, a, b, y, v_first, w_logit, a_logit, v_logit, g;  // [rows, C]
  Tensor lora;                         // [rows, largest LoRA rank]
  Tensor q, att;                       // [rows, H·d] (hybrid layers)
  Tensor gate, up;                     // [rows, F]
  Tensor logits;                       // [logit_rows, V]
};

// S and x_prev of every time-mix layer, the KV cache of every hybrid layer, and the workspace of
// one prefill chunk, all sized at creation.
class StudentState final : public ModelState {
 public:
  int64_t n_tokens() const override { return n; }
  size_t memory_bytes() const override { return memory.size() + ws.buffer.size(); }
  std::vector<StateTensor> tensors() override;
  void set_n_tokens(int64_t n_tokens) override;

  Buffer memory;
  Tensor S;        // F32 [Lw, H, N, N]
  Tensor x_prev;   // [Lw, C]
  Tensor k, v;     // [Lh, capacity, Hkv·d]; empty for a pure time-mix student
  Student::Workspace ws;
  int64_t capacity = 0;           // KV-cache rows (hybrid layers only)
  int64_t n = 0;                  // tokens consumed
  int64_t doc_start = 0;          // where the current document began (hybrid layers' first key)
  std::vector<int64_t> wkv_layer_ids, hybrid_layer_ids;  // model layer of each slot, for names
};

}  // namespace arwkv
