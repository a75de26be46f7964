// Internals of the teacher shared by its loading and running code: one layer's weight views, the
// activation workspace of a chunk of tokens, and the KV-cache state.
#pragma once

#include "model/teacher/teacher.h"

namespace arwkv {

// Views into the teacher's weight buffer. Biases, q/k norms and post norms are empty tensors when
// the family has none.
struct Teacher::Layer {
  Tensor attn_norm, wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo;
  Tensor mlp_norm, w_gate, w_up, w_down;
  Tensor post_attn_norm, post_mlp_norm;  // empty where the family has none
};

// Device memory for running up to `rows` tokens at once, carved from one buffer.
struct Teacher::Workspace {
  Buffer buffer;
  int64_t rows = 0;
  Tensor ids, pos, key_start;  // I32 [rows]; key_start: the first key of layers without a window
  Tensor key_start_local;      // I32 [rows]: the first key of layers with sliding_window
  Tensor x, xn, q, att, o;     // [rows, C] / [rows, H·d]
  Tensor k, v;                 // [1, rows, Hkv·d]: keys and values of a whole-sequence pass
  Tensor gate, up;             // [rows, F]
  Tensor logits;               // [logit_rows, V]
};

// A KV cache of fixed capacity plus the workspace of one prefill chunk, all sized at creation.
class TeacherState final : public ModelState {
 public:
  int64_t n_tokens() const override { return n; }
  size_t memory_bytes() const override { return cache.size() + ws.buffer.size(); }
  std::vector<StateTensor> tensors() override;
  void set_n_tokens(int64_t n_tokens) override;

  Buffer cache;
  Tensor k, v;                 // [L, capacity, Hkv·d]
  Teacher::Workspace ws;
  std::vector<int32_t> host_pos;
  int64_t capacity = 0, n = 0;
};

}  // namespace arwkv
