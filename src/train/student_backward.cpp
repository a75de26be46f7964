// StudentBackprop's passes: the training forward of every block (the same steps as Student's
// forward, keeping their activations) and each block's backward, in reverse order.
#include "train/student_backward.h"

#include "model/family_parts.h"
#include "train/student_backward_parts.h"

namespace arwkv {
namespace {

bool present(const Tensor& t) { return t.data != nullptr; }
const Tensor* bias_or_null(const Tensor& b) { return b.data ? &b : nullptr; }

Tensor plane(const Tensor& mixed, int64_t p) {  // [P, B, T, C] → plane p as [B·T, C]
  const int64_t rows = mixed.dim(1) * mixed.dim(2), C = mixed.dim(3);
  return Tensor{static_cast<float*>(mixed.data) + p * rows * C, Shape{rows, C}, mixed.dtype, mixed.device};
}

Tensor btc(const Tensor& t, int64_t B, int64_t T) { return t.reshape({B, T, t.cols()}); }

Tensor front(const Tensor& t, Shape s) {
  ARWKV_ASSERT(s.numel() <= t.numel(), "scratch view {} exceeds {}", s.str(), t.shape.str());
  return Tensor{t.data, s, t.dtype, t.device};
}

}  // namespace

// ---- Forward ------------------------------------------------------------------------------------

// out = TimeMix(xn) as SPEC §3 writes it, from a zero state per row; keeps every intermediate in a.
void StudentBackprop::tm_forward(const Layer& w, Acts& a, Tensor xn, Tensor out) {
  Ops& ops = *ops_;
  Scratch& s = *s_;
  const bool residual = present(w.v0), gate = cfg_.has_gate;
  const Tensor resets = any_reset_ ? s.resets : Tensor{};
  ops.copy(s.x_prev, s.zero_x_prev);
  ops.token_shift(a.mixed, btc(xn, B_, T_), s.x_prev, w.mix, resets);
  const Tensor x_r = plane(a.mixed, 0), x_w = plane(a.mixed, 1), x_k = plane(a.mixed, 2);
  const Tensor x_v = plane(a.mixed, 3), x_a = plane(a.mixed, 4);

  ops.matmul(a.r, x_r, w.receptance);
  ops.matmul(a.k_in, x_k, w.key);
  ops.matmul(a.v_in, x_v, w.value);
  ops.matmul(a.hw, x_w, w.w1);  // z = w0 + tanh(x_w·w1)·w2
  ops.tanh(a.hw, a.hw);
  ops.matmul(a.w_logit, a.hw, w.w2, &w.w0);
  ops.matmul(a.ha, x_a, w.a1);  // a = σ(a0 + (x_a·a1)·a2), in prepare
  ops.matmul(a.a_logit, a.ha, w.a2, &w.a0);
  if (residual) {
    ops.matmul(a.hv, x_v, w.v1);
    ops.matmul(a.v_logit, a.hv, w.v2, &w.v0);
  }
  if (gate) {  // g = σ(x_g·g1)·g2
    ops.matmul(a.hg, plane(a.mixed, 5), w.g1);
    ops.sigmoid(a.hg, a.hg);
    ops.matmul(a.g, a.hg, w.g2);
  }
  ops.copy(a.k, a.k_in);
  ops.copy(a.v, a.v_in);
  ops.wkv7_prepare(Wkv7PrepareArgs{.w = a.w, .a = a.a, .b = a.b, .k = a.k, .v = a.v, .w_logit = a.w_logit,
                                   .a_logit = a.a_logit, .v_first = residual ? s.v_first : Tensor{},
                                   .v_logit = residual ? a.v_logit : Tensor{}, .k_k = w.k_k, .k_a = w.k_a,
                                   .head_size = cfg_.head_size});
  if (!residual) ops.copy(s.v_first, a.v);  // the first time-mix layer makes v_first

  ops.copy(s.state, s.zero_state);
  ops.wkv7_forward(btc(a.y_wkv, B_, T_), s.state, btc(a.r, B_, T_), btc(a.w, B_, T_), btc(a.k, B_, T_),
                   btc(a.v, B_, T_), btc(a.a, B_, T_), btc(a.b, B_, T_), resets);
  ops.copy(a.y, a.y_wkv);
  ops.wkv7_output(a.y, a.r, a.k, a.v, w.r_k, gate ? a.g : Tensor{}, w.ln_w, w.ln_b, StudentConfig::kGroupNormEps);
  ops.matmul(out, a.y, w.output);
}

// out = o_proj(attention(rope(q), rope(k), v)) per row, within documents: the kept teacher attention
// (q and k normalised per head where the family does so).
void StudentBackprop::attention_forward(int64_t l, Tensor xn, Tensor out) {
  Ops& ops = *ops_;
  Scratch& s = *s_;
  const ModelConfig& c = cfg_.base;
  const Layer& w = student_->layers()[static_cast<size_t>(l)];
  const int H = static_cast<int>(c.n_heads), Hkv = static_cast<int>(c.n_kv_heads), d = static_cast<int>(c.head_dim);
  ops.matmul(s.q, xn, w.wq, bias_or_null(w.bq));
  ops.matmul(s.kq, xn, w.wk, bias_or_null(w.bk));
  ops.matmul(s.vq, xn, w.wv, bias_or_null(w.bv));
  head_rmsnorm(ops, s.q, w.q_norm, H, d, c.rms_eps);
  head_rmsnorm(ops, s.kq, w.k_norm, Hkv, d, c.rms_eps);
  const float theta = layer_rope_theta(c, l);
  ops.rope(s.q, s.pos, H, d, theta, student().rope_factors());
  ops.rope(s.kq, s.pos, Hkv, d, theta, student().rope_factors());
  const AttentionArgs args{.n_heads = H, .n_kv_heads = Hkv, .head_dim = d, .q_offset = 0, .scale = c.attn_scale};
  const Tensor& key_start = is_local_layer(c, l) ? s.key_start_local : s.key_start;
  for (int64_t b = 0; b < B_; ++b) {
    const int64_t r0 = b * T_, r1 = r0 + T_;
    ops.attention(s.att.slice_rows(r0, r1), s.q.slice_rows(r0, r1), s.kq.slice_rows(r0, r1), s.vq.slice_rows(r0, r1),
                  key_start.slice_rows(r0, r1), args);
  }
  ops.matmul(out, s.att, w.wo);
}

// x_out = x_mid + [post-norm] down(act(gate(xn2)) ⊙ up(xn2)), xn2 = RMSNorm₂(x_mid).
void StudentBackprop::mlp_forward(const Layer& w, Acts& a, Tensor x_mid, Tensor x_out) {
  Ops& ops = *ops_;
  const ModelConfig& c = cfg_.base;
  ops.rmsnorm(a.xn2, x_mid, w.mlp_norm, c.rms_eps);
  ops.matmul(a.gate, a.xn2, w.w_gate);
  ops.matmul(a.up, a.xn2, w.w_up);
  ops.glu(a.h, a.gate, a.up, family(c.arch).mlp_activation);
  if (!present(w.post_mlp_norm)) {
    ops.copy(x_out, x_mid);
    return ops.matmul(x_out, a.h, w.w_down, nullptr, /*accumulate=*/true);
  }
  ops.matmul(a.m_pre, a.h, w.w_down);
  ops.rmsnorm(s_->o, a.m_pre, w.post_mlp_norm, c.rms_eps);  // the block's output is no longer needed
  ops.add(x_out, x_mid, s_->o);
}

// resid[l + 1] from resid[l].
void StudentBackprop::layer_forward(int64_t l) {
  Ops& ops = *ops_;
  const Layer& w = student_->layers()[static_cast<size_t>(l)];
  Acts& a = acts_for(l);
  const Tensor x = s_->resid.slice_rows(l, l + 1).reshape({rows(), cfg_.base.hidden_size});
  const Tensor x_out = s_->resid.slice_rows(l + 1, l + 2).reshape({rows(), cfg_.base.hidden_size});
  ops.rmsnorm(a.xn, x, w.attn_norm, cfg_.base.rms_eps);
  const bool post = present(w.post_attn_norm);  // the block writes o_pre, normed into o
  if (w.wkv) tm_forward(w, a, a.xn, post ? a.o_pre : s_->o);
  else attention_forward(l, a.xn, post ? a.o_pre : s_->o);
  if (post) ops_->rmsnorm(s_->o, a.o_pre, w.post_attn_norm, cfg_.base.rms_eps);
  ops.add(a.x_mid, x, s_->o);
  mlp_forward(w, a, a.x_mid, x_out);
}

void StudentBackprop::forward(std::span<const int32_t> ids) {
  ARWKV_ASSERT(!align_, "forward() of an align pass");
  if (static_cast<int64_t>(ids.size()) != rows()) fail("student training: {} ids for {} rows", ids.size(), rows());
  const int64_t L = cfg_.base.n_layers, R = rows(), C = cfg_.base.hidden_size;
  ops_->upload(s_->ids, ids.data());
  ops_->embedding(s_->resid.slice_rows(0, 1).reshape({R, C}), student_->embedding(), s_->ids);
  scale_embedding(*ops_, s_->resid.slice_rows(0, 1).reshape({R, C}), cfg_.base);
  for (int64_t l = 0; l < L; ++l) layer_forward(l);
  ops_->rmsnorm(s_->xf, s_->resid.slice_rows(L, L + 1).reshape({R, C}), student_->final_norm(), cfg_.base.rms_eps);
}

void StudentBackprop::head_forward(Tensor logits, int64_t row0) {
  ops_->matmul(logits, s_->xf.slice_rows(row0, row0 + logits.rows()), student_->lm_head());
}

void StudentBackprop::time_mix_forward(int64_t layer, Tensor xn, Tensor out) {
  const Layer& w = student_->layers()[static_cast<size_t>(layer)];
  if (!w.wkv) fail("student training: layer {} is not a time-mix layer", layer);
  align_inputs_[static_cast<size_t>(layer)] = xn;
  tm_forward(w, acts_for(layer), xn, out);
}

Tensor StudentBackprop::time_mix_output_input(int64_t layer) {
  ARWKV_ASSERT(!recompute_, "time_mix_output_input in recompute mode");
  return acts_for(layer).y;
}

// ---- Backward -----------------------------------------------------------------------------------

// out = act(x·firstᵀ)·secondᵀ + bias, given dout; hidden = act(x·firstᵀ) as the forward kept it.
void StudentBackprop::lora_backward(Tensor dx, Tensor dfirst, Tensor dsecond, Tensor dbias, Tensor dout, Tensor hidden,
                                    Tensor x, Tensor first, Tensor second,
                                    void (Ops::*activation_backward)(Tensor, Tensor, Tensor)) {
  Tensor dh = front(s_->dh, hidden.shape);
  ops_->matmul_backward(dh, dsecond, dbias, dout, hidden, second);
  if (activation_backward) (ops_->*activation_backward)(dh, dh, hidden);
  ops_->matmul_backward(dx, dfirst, Tensor{}, dh, x, first, /*accumulate_dx=*/true);
}

// From dout of the block's output to dxn of its input, accumulating the parameter gradients in g.
void StudentBackprop::tm_backward(const Layer& w, const Layer& g, Acts& a, Tensor xn, Tensor dout, Tensor dxn) {
  Ops& ops = *ops_;
  Scratch& s = *s_;
  const bool residual = present(w.v0), gate = cfg_.has_gate;
  const Tensor resets = any_reset_ ? s.resets : Tensor{};
  // out = y·Woᵀ, then the output op (group norm, bonus, gate)
  ops.matmul_backward(s.dy, g.output, Tensor{}, dout, a.y, w.output);
  for (const Tensor* t : {&s.dr, &s.dk, &s.dv, &s.dw, &s.da, &s.db}) ops.copy(*t, s.zeros);
  ops.wkv7_output_backward(Wkv7OutputGrads{.dy = s.dy, .dr = s.dr, .dk = s.dk, .dv = s.dv, .dr_k = g.r_k,
                                           .dg = gate ? s.dg : Tensor{}, .dln_w = g.ln_w, .dln_b = g.ln_b},
                           a.y_wkv, a.r, a.k, a.v, w.r_k, gate ? a.g : Tensor{}, w.ln_w, w.ln_b,
                           StudentConfig::kGroupNormEps);
  // the recurrence, from a zero state per row
  ops.wkv7_backward(Wkv7Grads{.dr = btc(s.dr, B_, T_), .dw = btc(s.dw, B_, T_), .dk = btc(s.dk, B_, T_),
                              .dv = btc(s.dv, B_, T_), .da = btc(s.da, B_, T_), .db = btc(s.db, B_, T_), .dstate = Tensor{}},
                    btc(s.dy, B_, T_), s.zero_state, btc(a.r, B_, T_), btc(a.w, B_, T_), btc(a.k, B_, T_),
                    btc(a.v, B_, T_), btc(a.a, B_, T_), btc(a.b, B_, T_), resets);
  // prepare: decay, iclr, kk, k, value residual
  ops.wkv7_prepare_backward(
      Wkv7PrepareArgs{.w = a.w, .a = a.a, .b = a.b, .k = a.k_in, .v = a.v_in, .w_logit = a.w_logit,
                      .a_logit = a.a_logit, .v_first = residual ? s.v_first : Tensor{},
                      .v_logit = residual ? a.v_logit : Tensor{}, .k_k = w.k_k, .k_a = w.k_a,
                      .head_size = cfg_.head_size},
      Wkv7PrepareGrads{.dw = s.dw, .da = s.da, .db = s.db, .dk = s.dk, .dv = s.dv, .dw_logit = s.dw_logit,
                       .da_logit = s.da_logit, .dv_first = residual ? s.dv_first : Tensor{},
                       .dv_logit = residual ? s.dv_logit : Tensor{}, .dk_k = g.k_k, .dk_a = g.k_a});
  if (!residual) ops.add(s.dv, s.dv, s.dv_first);  // v_first = v: every later layer's share comes back here

  // the projections and LoRAs, from the token-shifted inputs
  const Tensor dx_r = plane(s.dmixed, 0), dx_w = plane(s.dmixed, 1), dx_k = plane(s.dmixed, 2);
  const Tensor dx_v = plane(s.dmixed, 3), dx_a = plane(s.dmixed, 4);
  const Tensor x_r = plane(a.mixed, 0), x_w = plane(a.mixed, 1), x_k = plane(a.mixed, 2);
  const Tensor x_v = plane(a.mixed, 3), x_a = plane(a.mixed, 4);
  ops.matmul_backward(dx_r, g.receptance, Tensor{}, s.dr, x_r, w.receptance);
  ops.matmul_backward(dx_k, g.key, Tensor{}, s.dk, x_k, w.key);
  ops.matmul_backward(dx_v, g.value, Tensor{}, s.dv, x_v, w.value);
  ops.copy(dx_w, s.zeros);
  ops.copy(dx_a, s.zeros);
  lora_backward(dx_w, g.w1, g.w2, g.w0, s.dw_logit, a.hw, x_w, w.w1, w.w2, &Ops::tanh_backward);
  lora_backward(dx_a, g.a1, g.a2, g.a0, s.da_logit, a.ha, x_a, w.a1, w.a2, nullptr);
  if (residual) lora_backward(dx_v, g.v1, g.v2, g.v0, s.dv_logit, a.hv, x_v, w.v1, w.v2, nullptr);
  if (gate) {
    ops.copy(plane(s.dmixed, 5), s.zeros);
    lora_backward(plane(s.dmixed, 5), g.g1, g.g2, Tensor{}, s.dg, a.hg, plane(a.mixed, 5), w.g1, w.g2,
                  &Ops::sigmoid_backward);
  }
  ops.token_shift_backward(btc(dxn, B_, T_), Tensor{}, g.mix, s.dmixed, btc(xn, B_, T_), s.zero_x_prev, w.mix,
                           resets);
}

// dx: on entry the gradient of the block's output x_mid + MLP(...), on return that of x_mid.
void StudentBackprop::mlp_backward(const Layer& w, const Layer& g, Acts& a, Tensor x_mid, Tensor dx) {
  Ops& ops = *ops_;
  Scratch& s = *s_;
  const ModelConfig& c = cfg_.base;
  Tensor dm = dx;  // the gradient of down(...): dx itself, or through the post norm (into dxn, free here)
  if (present(w.post_mlp_norm)) {
    ops.rmsnorm_backward(s.dxn, g.post_mlp_norm, dx, a.m_pre, w.post_mlp_norm, c.rms_eps);
    dm = s.dxn;
  }
  ops.matmul_backward(s.dhf, g.w_down, Tensor{}, dm, a.h, w.w_down);
  ops.glu_backward(s.dgate, s.dup, s.dhf, a.gate, a.up, family(c.arch).mlp_activation);
  ops.matmul_backward(s.dxn2, g.w_gate, Tensor{}, s.dgate, a.xn2, w.w_gate);
  ops.matmul_backward(s.dxn2, g.w_up, Tensor{}, s.dup, a.xn2, w.w_up, /*accumulate_dx=*/true);
  ops.rmsnorm_backward(dx, g.mlp_norm, s.dxn2, x_mid, w.mlp_norm, cfg_.base.rms_eps, /*accumulate_dx=*/true);
}

// s.dx: on entry the gradient of resid[l + 1], on return that of resid[l].
void StudentBackprop::layer_backward(int64_t l) {
  const Layer& w = student_->layers()[static_cast<size_t>(l)];
  const Layer& g = grads_[static_cast<size_t>(l)];
  if (recompute_) layer_forward(l);
  Acts& a = acts_for(l);
  mlp_backward(w, g, a, a.x_mid, s_->dx);
  if (!w.wkv) {
    ARWKV_ASSERT(l == lowest_, "a gradient must not pass the kept attention of layer {}", l);
    return;
  }
  // x_mid = x + o: o's gradient is x_mid's (through the post norm into s.o, free here, where there is one)
  Tensor dout = s_->dx;
  if (present(w.post_attn_norm)) {
    ops_->rmsnorm_backward(s_->o, g.post_attn_norm, s_->dx, a.o_pre, w.post_attn_norm, cfg_.base.rms_eps);
    dout = s_->o;
  }
  tm_backward(w, g, a, a.xn, dout, s_->dxn);
  const Tensor x = s_->resid.slice_rows(l, l + 1).reshape({rows(), cfg_.base.hidden_size});
  ops_->rmsnorm_backward(s_->dx, g.attn_norm, s_->dxn, x, w.attn_norm, cfg_.base.rms_eps, /*accumulate_dx=*/true);
}

void StudentBackprop::head_backward(Tensor dlogits, int64_t row0) {
  const int64_t n = dlogits.rows();
  const Tensor dxf = lowest_ <= cfg_.base.n_layers ? s_->dxf.slice_rows(row0, row0 + n) : Tensor{};
  ops_->matmul_backward(dxf, d_head_, Tensor{}, dlogits, s_->xf.slice_rows(row0, row0 + n), student_->lm_head());
}

void StudentBackprop::backward() {
  ARWKV_ASSERT(!align_, "backward() of an align pass");
  const int64_t L = cfg_.base.n_layers, R = rows(), C = cfg_.base.hidden_size;
  if (lowest_ > L) return;  // only the head trains
  ops_->rmsnorm_backward(s_->dx, d_final_norm_, s_->dxf, s_->resid.slice_rows(L, L + 1).reshape({R, C}),
                         student_->final_norm(), cfg_.base.rms_eps);
  for (int64_t l = L - 1; l >= std::max<int64_t>(lowest_, 0); --l) layer_backward(l);
  if (present(d_embed_) && lowest_ < 0) {
    if (const float scale = embed_scale(cfg_.base); scale != 1.0f) ops_->scale(s_->dx, scale);
    ops_->embedding_backward(d_embed_, s_->dx, s_->ids);
  }
}

void StudentBackprop::time_mix_backward(int64_t layer, Tensor dout) {
  const Layer& w = student_->layers()[static_cast<size_t>(layer)];
  const Tensor xn = align_inputs_[static_cast<size_t>(layer)];
  if (!w.wkv || !present(xn)) fail("student training: layer {} has no time-mix forward to go back through", layer);
  Acts& a = acts_for(layer);
  if (recompute_) tm_forward(w, a, xn, s_->o);
  tm_backward(w, grads_[static_cast<size_t>(layer)], a, xn, dout, s_->dxn);
}

}  // namespace arwkv
