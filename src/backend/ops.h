// The one op interface. Model, inference and training code call these; each backend (the scalar
// reference in cpu/ref, the fast CPU backend in cpu, later CUDA) implements all of them, and the
// tests run every op of every backend against the reference.
//
// Conventions: tensors are contiguous row-major views on the backend's device (I32 index tensors
// too); outputs are preallocated by the caller and shape-checked by the backend (a mismatch throws
// arwkv::Error); "rows" are all dims but the last. Linear layers store weights as PyTorch does,
// W[out, in], and compute y = x·Wᵀ (+ b). An Ops object may keep scratch memory between calls: use
// one from one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/tensor.h"

namespace arwkv {

struct AttentionArgs {
  int n_heads = 0;         // query heads
  int n_kv_heads = 0;      // key/value heads; divides n_heads (GQA)
  int head_dim = 0;
  int64_t q_offset = 0;    // position of query row 0 among the key rows (KV-cache length before it)
  float scale = 0.0f;      // 0 means 1/sqrt(head_dim)
};

// Arguments of Ops::wkv7_prepare: all [R, C] unless noted (R token rows, C = H·N).
struct Wkv7PrepareArgs {
  Tensor w, a, b;             // outputs: decay, −kk and kk ⊙ iclr (the a and b of wkv7_forward)
  Tensor k, v;                // key and value, updated in place
  Tensor w_logit, a_logit;    // w0 + tanh(x_w·w1)·w2 and a0 + (x_a·a1)·a2
  Tensor v_first, v_logit;    // v_first and v0 + (x_v·v1)·v2; both empty: no value residual
  Tensor k_k, k_a;            // [C]
  int head_size = 64;         // N
};

// Gradients of Ops::wkv7_prepare (shapes as in Wkv7PrepareArgs; see wkv7_prepare_backward).
struct Wkv7PrepareGrads {
  Tensor dw, da, db;          // in: gradients of the outputs w, a, b
  Tensor dk, dv;              // in: of the updated k and v; out: of k and v as they came in (in place)
  Tensor dw_logit, da_logit;  // written
  Tensor dv_first;            // accumulates: every later layer's value residual reads layer 0's v
  Tensor dv_logit;            // written; dv_first and dv_logit empty without value residual
  Tensor dk_k, dk_a;          // [C], accumulate; empty: not computed
};

// Gradients of Ops::wkv7_output (see wkv7_output_backward).
struct Wkv7OutputGrads {
  Tensor dy;                  // in: gradient of the op's output; out: of the y that came in (in place)
  Tensor dr, dk, dv;          // accumulate: r, k and v also feed the recurrence
  Tensor dr_k;                // [H, N], accumulates
  Tensor dg;                  // written; empty when the forward had no gate
  Tensor dln_w, dln_b;        // [C], accumulate; empty without group norm
};

// Gradients of Ops::wkv7_forward (see wkv7_backward).
struct Wkv7Grads {
  Tensor dr, dw, dk, dv, da, db;  // [B, T, C], accumulate (+=)
  Tensor dstate;                  // [B, H, N, N], in place (in: of the final state; out: of state_in), or empty
};

class Ops {
 public:
  virtual ~Ops() = default;
  virtual const char* name() const = 0;
  virtual Device device() const = 0;

  // Memory on the backend's device, and copies between it and the host.
  virtual Buffer alloc(size_t bytes) = 0;
  virtual void upload(Tensor dst, const void* host_src) = 0;
  virtual void download(void* host_dst, Tensor src) = 0;
  virtual void synchronize() {}

  // y[M, N] = x[M, K]·w[N, K]ᵀ (+ bias[N]); with accumulate, y += ...
  // The weight may be compact (F16, BF16 or a quantisation block type, core/tensor.h; K a multiple
  // of its block): it is read as stored and dequantised a tile at a time, never as a whole.
  virtual void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias = nullptr,
                      bool accumulate = false) = 0;
  // y[T, C] = table[ids[t], :]; ids is I32 [T]; an id outside the table throws. The table may be
  // compact like a matmul weight (its rows are dequantised).
  virtual void embedding(Tensor y, Tensor table, Tensor ids) = 0;
  // y = x / sqrt(mean(x²) + eps) ⊙ w, per row; computed in fp32 (y may alias x).
  virtual void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) = 0;
  // In place on x [T, n_heads·head_dim]; HF rotate_half convention: pairs (i, i + head_dim/2)
  // rotate by angle pos[t]·theta^(-2i/head_dim) / freq_factors[i]. pos is I32 [T]; freq_factors F32
  // [head_dim/2] (Llama 3's scaled frequencies, as llama.cpp's rope_freqs) or empty: all 1.
  virtual void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta, Tensor freq_factors = {}) = 0;
  // Causal GQA softmax attention. q [T, n_heads·d], k and v [S, n_kv_heads·d], out [T, n_heads·d].
  // Query t sits at key position q_offset + t and sees keys key_start[t] .. q_offset + t, so
  // document boundaries inside a packed sequence are a per-query first key (key_start is I32 [T];
  // an empty tensor, data == nullptr, means 0 for all). Softmax in fp32.
  virtual void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start,
                         const AttentionArgs& args) = 0;
  // y = act(gate) ⊙ up (y may alias gate or up)
  virtual void glu(Tensor y, Tensor gate, Tensor up, Activation act) = 0;
  // y = a + b (y may alias a or b)
  virtual void add(Tensor y, Tensor a, Tensor b) = 0;
  virtual void copy(Tensor dst, Tensor src) = 0;

  // ---- RWKV-7 (SPEC §3) -------------------------------------------------------------------------
  // The WKV-7 recurrence over B sequences of T tokens, H heads of size N (C = H·N). Per head, with
  // the state S [N, N] (rows i = value index, columns j = key index):
  //   sa_i = Σ_j S_ij·a_j;   S_ij = S_ij·w_j + sa_i·b_j + v_i·k_j;   y_i = Σ_j S_ij·r_j
  // r, w, k, v, a, b, y: [B, T, C] (w is the decay, in (0, 1); the model passes a = −kk and
  // b = kk ⊙ iclr). state: F32 [B, H, N, N], read and updated in place. reset: I32 [B, T], or empty;
  // a non-zero entry zeroes that sequence's state before its token t (a document boundary).
  virtual void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a,
                            Tensor b, Tensor reset) = 0;
  // One token per sequence: r, w, k, v, a, b, y [B, C]; wkv7_forward with T = 1 and no reset.
  virtual void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a,
                           Tensor b) = 0;
  // The gradient of wkv7_forward over the same inputs. dy [B, T, C] is the gradient of y; state_in
  // [B, H, N, N] is the state as wkv7_forward received it (before token 0), read only. The six input
  // gradients in d accumulate (+=), since r, k and v also reach the loss through wkv7_output: zero
  // them first otherwise. d.dstate holds on entry the gradient of the state after the last token
  // (zeros when nothing reads it) and on return that of state_in; empty means zero in, nothing out.
  // A reset at token t cuts the flow through the state there (nothing before t gets gradient from
  // the state). The per-token states are not stored by anyone: the backend recomputes them from
  // state_in. A long sequence is back-propagated in pieces, last piece first, each with its own
  // state_in, d.dstate carried from one call to the one before. Gradients must not alias inputs.
  virtual void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k,
                             Tensor v, Tensor a, Tensor b, Tensor reset) = 0;

  // ---- Student time mixing (SPEC §3): the element-wise steps around the WKV-7 recurrence ---------
  // Token shift and lerp: for x [B, T, C] and P mixes mix [P, C] (x_r, x_w, ... stacked),
  //   out[p, b, t] = x[b, t] + (prev[b, t] − x[b, t]) ⊙ mix[p]        out: [P, B, T, C]
  // with prev[b, t] = x[b, t−1], x_prev[b] at t = 0, and zero where reset[b, t] != 0 (a document
  // starts at t). Then x_prev [B, C] becomes x[b, T−1]. reset: I32 [B, T], or empty for none.
  virtual void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) = 0;
  // Element-wise y = tanh(x), y = 1 / (1 + exp(−x)); y may alias x.
  virtual void tanh(Tensor y, Tensor x) = 0;
  virtual void sigmoid(Tensor y, Tensor x) = 0;
  // Per row, from the LoRA outputs to the inputs of wkv7_forward:
  //   w = exp(−e^−0.5 · sigmoid(w_logit));   iclr = sigmoid(a_logit)
  //   v ← v + (v_first − v) ⊙ sigmoid(v_logit)                  (only with v_first)
  //   kk = k ⊙ k_k, L2-normalised within each head of N (x / max(‖x‖, 1e-12))
  //   k ← k ⊙ (1 + (iclr − 1) ⊙ k_a);   a = −kk;   b = kk ⊙ iclr
  virtual void wkv7_prepare(const Wkv7PrepareArgs& args) = 0;
  // In place on the WKV output y [R, C], per row and head h of N = r_k.dim(1) channels:
  //   y ← GroupNorm(y) ⊙ ln_w + ln_b  (mean and biased variance over the head, eps; when ln_w is set)
  //   y ← y + (Σ_j r_j·k_j·r_k[h, j]) · v                                  (the "bonus")
  //   y ← y ⊙ g                                                            (when g is set)
  // r, k, v, g: [R, C]; r_k [H, N]; ln_w, ln_b [C]; g, ln_w, ln_b may be empty.
  virtual void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w,
                           Tensor ln_b, float eps) = 0;

  // ---- Training (SPEC §4): backward passes, losses fused with their softmax, optimiser steps ------
  // A backward op takes the gradient of its forward's output and the forward's inputs; where the
  // forward works in place, the inputs as they were before it (the caller keeps copies). Parameter
  // gradients accumulate (dw += ...), and an empty one (data == nullptr) is not computed; input
  // gradients are written unless noted. The gradient of the WKV-7 recurrence is wkv7_backward above.
  //
  // matmul: dx = dy·w (dx += with accumulate_dx), dw += dyᵀ·x, db += Σ_rows dy, for dy [M, N],
  // x [M, K], w [N, K]; any of dx, dw, db may be empty. A compact w (a frozen weight) gives dx
  // only: dw must be empty.
  virtual void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                               bool accumulate_dx = false) = 0;
  // dtable[ids[t], :] += dy[t, :]; an id outside the table throws.
  virtual void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) = 0;
  // rmsnorm: dx = s·(dy ⊙ w) − x·s³·mean(dy ⊙ w ⊙ x) per row with s = (mean(x²) + eps)^−½ (dx +=
  // with accumulate_dx: a norm's input is the residual stream, whose gradient holds the skip path);
  // dw += Σ_rows dy ⊙ x·s. dx may be empty.
  virtual void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps,
                                bool accumulate_dx = false) = 0;
  // glu: dgate = dy ⊙ up ⊙ act'(gate), dup = dy ⊙ act(gate); written, and may alias any input.
  virtual void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) = 0;
  // token_shift (shapes as there; x_prev as the forward received it): dx written; dmix [P, C] +=;
  // dx_prev [B, C] in place like the forward's x_prev: on entry the gradient of the carried x[b, T−1]
  // (from the next piece of the sequence; zeros for none), on return that of the x_prev that came
  // in (zero where reset[b, 0] is set). dx_prev may be empty: no carried gradient in or out.
  virtual void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x,
                                    Tensor x_prev, Tensor mix, Tensor reset) = 0;
  // From the forward's output y: dx = dy ⊙ (1 − y²) and dx = dy ⊙ y ⊙ (1 − y); dx may alias dy.
  virtual void tanh_backward(Tensor dx, Tensor dy, Tensor y) = 0;
  virtual void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) = 0;
  // wkv7_prepare: fwd holds the forward's arguments with k and v as they were before the call (its
  // outputs w, a, b are not read); what each gradient in d holds is written at Wkv7PrepareGrads.
  virtual void wkv7_prepare_backward(const Wkv7PrepareArgs& fwd, const Wkv7PrepareGrads& d) = 0;
  // wkv7_output: y is the WKV output before the call (the forward overwrote it); the other inputs
  // as in the forward; what each gradient in d holds is written at Wkv7OutputGrads.
  virtual void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v,
                                    Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b, float eps) = 0;

  // Losses, forward and backward in one call, per row of logits [R, V] (R tokens, V vocabulary):
  // loss F32 [R] gets each row's loss, 0 where mask[r] == 0 (mask I32 [R]; empty: every row counts);
  // dlogits [R, V] gets grad_scale·∂loss[r]/∂logits[r] (zeros on rows that do not count; pass e.g.
  // 1/number of counted rows for a mean). dlogits may alias logits and may be empty (loss only).
  // Softmaxes are stabilised by the row max and summed in double.
  //   cross_entropy: loss = logsumexp(z) − z[target]; targets I32 [R], checked on counted rows.
  virtual void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask,
                             float grad_scale) = 0;
  //   kl_div: τ²·KL(p_t ‖ p_s) with p_t = softmax(teacher_logits/τ), p_s = softmax(logits/τ), both
  //   [R, V]; d/dlogits = τ·(p_s − p_t).
  virtual void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask,
                      float temperature, float grad_scale) = 0;
  //   kl_div_topk: the teacher as K (id, logit) pairs per row, teacher_ids I32 [R, K] (distinct
  //   within a row) and teacher_logits [R, K] (log-probabilities do as well: p_t = softmax over the K
  //   at τ, so the teacher is renormalised over its top k); the student's softmax is over all V:
  //   loss = τ²·Σ_k p_t,k·(log p_t,k − log p_s[id_k]); d/dlogits = τ·(p_s − p_t placed at the ids).
  virtual void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids,
                           Tensor teacher_logits, Tensor mask, float temperature, float grad_scale) = 0;
  //   align_loss (stage 1): loss = ‖teacher − student‖²/C per row of [R, C];
  //   d/dstudent = 2·(student − teacher)/C; dstudent may alias student.
  virtual void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask,
                          float grad_scale) = 0;

  // AdamW with decoupled weight decay and bias correction; step counts from 1. Element-wise:
  //   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
  //   param ← param·(1 − lr·wd) − lr·(m / (1 − β1^step)) / (sqrt(v / (1 − β2^step)) + eps)
  virtual void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1,
                          float beta2, float eps, float weight_decay, int64_t step) = 0;
  // acc[0] += Σ x² (acc F32 [1] on the device: the norm over all gradients costs one download).
  virtual void sum_squares(Tensor acc, Tensor x) = 0;
  // x ← x·s (gradient clipping, loss scaling).
  virtual void scale(Tensor x, float s) = 0;
};

// The scalar reference (double accumulation) and the fast CPU backend (OpenBLAS + OpenMP).
std::unique_ptr<Ops> make_reference_ops();
std::unique_ptr<Ops> make_cpu_ops();
// The CUDA backend (cuBLAS + our kernels) on GPU 0; throws, saying why, when the build has no CUDA,
// there is no GPU or it is older than compute capability 8.0.
std::unique_ptr<Ops> make_cuda_ops();
// Whether make_cuda_ops() can succeed; why gets the device's description, or the reason it cannot.
bool cuda_available(std::string* why = nullptr);
// The CUDA backend's kernels run on the CPU by an emulation of the CUDA execution model (slow: for
// tests on machines without a GPU).
std::unique_ptr<Ops> make_cuda_emulated_ops();
// By name, one of backend_names(): "cpu", "cuda", "reference", "cuda-emulated".
std::unique_ptr<Ops> make_ops(const std::string& name);
const std::vector<std::string>& backend_names();

}  // namespace arwkv
