// Running the student: the time-mix block as SPEC §3 writes it, the kept attention and the MLP
// blocks, the whole-sequence pass (packed documents, a carried state, capture) and extend().
#include "model/student/student.h"

#include "model/family_parts.h"
#include "model/student/student_parts.h"

namespace arwkv {
namespace {

Tensor rows_of(const Tensor& t, int64_t n) { return t.slice_rows(0, n); }
const Tensor* bias_or_null(const Tensor& b) { return b.data ? &b : nullptr; }
bool present(const Tensor& t) { return t.data != nullptr; }

// The first shape.numel() elements of a workspace tensor, seen with another shape.
Tensor front(const Tensor& t, Shape s) {
  ARWKV_ASSERT(s.numel() <= t.numel(), "workspace view {} exceeds {}", s.str(), t.shape.str());
  return Tensor{t.data, s, t.dtype, t.device};
}

Tensor slab(const Tensor& t, int64_t i) {  // t[i] of a stacked [L, ...] tensor, keeping a leading 1
  return t.slice_rows(i, i + 1);
}

}  // namespace

// out = act(x·firstᵀ)·secondᵀ (+ bias): one LoRA; act null means none.
void Student::lora(Tensor out, Tensor x, Tensor first, Tensor second, const Tensor* bias, Workspace& ws,
                   void (Ops::*activation)(Tensor, Tensor)) const {
  Tensor h = front(ws.lora, Shape{x.rows(), first.dim(0)});
  ops_->matmul(h, x, first);
  if (activation) (ops_->*activation)(h, h);
  ops_->matmul(out, h, second, bias);
}

// ws.o = TimeMix(ws.xn) for T tokens, continuing the layer's S and x_prev in s.
void Student::time_mix_block(const Layer& w, Workspace& ws, StudentState& s, int64_t T, bool reset) const {
  Ops& ops = *ops_;
  const int64_t C = cfg_.base.hidden_size;
  Tensor xn = rows_of(ws.xn, T), r = rows_of(ws.r, T), k = rows_of(ws.k, T), v = rows_of(ws.v, T);
  Tensor y = rows_of(ws.y, T), g = rows_of(ws.g, T), v_first = rows_of(ws.v_first, T);
  Tensor decay = rows_of(ws.w, T), a = rows_of(ws.a, T), b = rows_of(ws.b, T);
  Tensor reset_flags = reset ? front(ws.reset, Shape{1, T}) : Tensor{};
  Tensor S = slab(s.S, w.slot);

  // x_* = x + (x_prev − x) ⊙ mix_*, for * in r, w, k, v, a, g
  Tensor mixed = front(ws.mixed, Shape{n_planes_, 1, T, C});
  ops.token_shift(mixed, xn.reshape({1, T, C}), slab(s.x_prev, w.slot), w.mix, reset_flags);
  auto plane = [&](int p) {
    return Tensor{static_cast<float*>(mixed.data) + p * T * C, Shape{T, C}, mixed.dtype, mixed.device};
  };
  const Tensor x_r = plane(0), x_w = plane(1), x_k = plane(2), x_v = plane(3), x_a = plane(4);

  ops.matmul(r, x_r, w.receptance);
  ops.matmul(k, x_k, w.key);
  ops.matmul(v, x_v, w.value);
  Tensor w_logit = rows_of(ws.w_logit, T), a_logit = rows_of(ws.a_logit, T), v_logit = rows_of(ws.v_logit, T);
  lora(w_logit, x_w, w.w1, w.w2, &w.w0, ws, &Ops::tanh);  // z = w0 + tanh(x_w·w1)·w2
  lora(a_logit, x_a, w.a1, w.a2, &w.a0, ws, nullptr);     // a = sigmoid(a0 + (x_a·a1)·a2), in prepare
  const bool value_residual = present(w.v0);
  if (value_residual) lora(v_logit, x_v, w.v1, w.v2, &w.v0, ws, nullptr);
  if (cfg_.has_gate) lora(g, plane(5), w.g1, w.g2, nullptr, ws, &Ops::sigmoid);  // g = sigmoid(x_g·g1)·g2

  // decay, value residual, iclr, kk, k  →  the inputs of the recurrence
  ops.wkv7_prepare(Wkv7PrepareArgs{.w = decay, .a = a, .b = b, .k = k, .v = v, .w_logit = w_logit,
                                   .a_logit = a_logit, .v_first = value_residual ? v_first : Tensor{},
                                   .v_logit = value_residual ? v_logit : Tensor{}, .k_k = w.k_k, .k_a = w.k_a,
                                   .head_size = cfg_.head_size});
  if (!value_residual) ops.copy(v_first, v);  // the first time-mix layer makes v_first

  if (T == 1 && !reset) {
    ops.wkv7_decode(y, S, r, decay, k, v, a, b);
  } else {
    const Shape btc{1, T, C};
    ops.wkv7_forward(y.reshape(btc), S, r.reshape(btc), decay.reshape(btc), k.reshape(btc), v.reshape(btc),
                     a.reshape(btc), b.reshape(btc), reset_flags);
  }
  // (GroupNorm), + (Σ r·k·r_k)·v per head, ⊙ g; then the output projection
  ops.wkv7_output(y, r, k, v, w.r_k, cfg_.has_gate ? g : Tensor{}, w.ln_w, w.ln_b, StudentConfig::kGroupNormEps);
  ops.matmul(rows_of(ws.o, T), y, w.output);
}

// ws.o = o_proj(attention(rope(q), rope(k), v)) over ws.xn: the teacher's attention, kept (with its
// per-head q/k norms where the family has them, layer l's window and RoPE base). Keys and values of
// the T new tokens go to rows n .. n+T of the layer's cache.
void Student::attention_block(int64_t l, Workspace& ws, StudentState& s, int64_t T) const {
  const Layer& w = layers_[static_cast<size_t>(l)];
  Ops& ops = *ops_;
  const ModelConfig& c = cfg_.base;
  const int H = static_cast<int>(c.n_heads), Hkv = static_cast<int>(c.n_kv_heads), d = static_cast<int>(c.head_dim);
  auto cache = [&](const Tensor& all) { return slab(all, w.slot).reshape({all.dim(1), all.dim(2)}); };
  Tensor k_all = cache(s.k), v_all = cache(s.v);
  Tensor k_new = k_all.slice_rows(s.n, s.n + T), v_new = v_all.slice_rows(s.n, s.n + T);
  Tensor xn = rows_of(ws.xn, T), q = rows_of(ws.q, T), pos = rows_of(ws.pos, T);

  ops.matmul(q, xn, w.wq, bias_or_null(w.bq));
  ops.matmul(k_new, xn, w.wk, bias_or_null(w.bk));
  ops.matmul(v_new, xn, w.wv, bias_or_null(w.bv));
  head_rmsnorm(ops, q, w.q_norm, H, d, c.rms_eps);
  head_rmsnorm(ops, k_new, w.k_norm, Hkv, d, c.rms_eps);
  const float theta = layer_rope_theta(c, l);
  ops.rope(q, pos, H, d, theta, rope_factors_.tensor);
  ops.rope(k_new, pos, Hkv, d, theta, rope_factors_.tensor);
  AttentionArgs args{.n_heads = H, .n_kv_heads = Hkv, .head_dim = d, .q_offset = s.n, .scale = c.attn_scale};
  ops.attention(rows_of(ws.att, T), q, k_all.slice_rows(0, s.n + T), v_all.slice_rows(0, s.n + T),
                rows_of(is_local_layer(c, l) ? ws.key_start_local : ws.key_start, T), args);
  ops.matmul(rows_of(ws.o, T), rows_of(ws.att, T), w.wo);
}

// T tokens already uploaded to ws; leaves the residual stream in ws.x and advances s by T.
void Student::run_layers(Workspace& ws, StudentState& s, int64_t T, bool reset, StudentCapture* capture) const {
  Ops& ops = *ops_;
  Tensor x = rows_of(ws.x, T), xn = rows_of(ws.xn, T), o = rows_of(ws.o, T);
  ops.embedding(x, embed_, rows_of(ws.ids, T));
  scale_embedding(ops, x, cfg_.base);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& w = layers_[l];
    ops.rmsnorm(xn, x, w.attn_norm, cfg_.base.rms_eps);
    if (w.wkv) time_mix_block(w, ws, s, T, reset);
    else attention_block(static_cast<int64_t>(l), ws, s, T);
    if (capture) ops.download(capture->mix_output[l].values.data(), o);
    post_norm(ops, o, w.post_attn_norm, cfg_.base.rms_eps);
    ops.add(x, x, o);
    mlp_block(ops, w, cfg_.base, x, xn, rows_of(ws.gate, T), rows_of(ws.up, T), o);
  }
  s.n += T;
}

// ws.logits[0 .. n_rows) = head(RMSNorm(x[first_row .. first_row + n_rows))).
void Student::head(Workspace& ws, int64_t first_row, int64_t n_rows) const {
  Tensor xn = ws.xn.slice_rows(first_row, first_row + n_rows);
  ops_->rmsnorm(xn, ws.x.slice_rows(first_row, first_row + n_rows), final_norm_, cfg_.base.rms_eps);
  ops_->matmul(rows_of(ws.logits, n_rows), xn, lm_head_);
}

bool Student::upload_tokens(Workspace& ws, StudentState& s, std::span<const int32_t> ids,
                            std::span<const int32_t> doc_ids) const {
  const int64_t T = static_cast<int64_t>(ids.size());
  if (!s.hybrid_layer_ids.empty() && s.n + T > s.capacity)
    fail("student: the context is full: {} tokens held, {} more do not fit in {}", s.n, T, s.capacity);
  std::vector<int32_t> pos(ids.size()), key_start(ids.size()), key_start_local(ids.size()), reset(ids.size());
  bool any_reset = false;
  for (int64_t t = 0; t < T; ++t) {
    const size_t i = static_cast<size_t>(t);
    if (!doc_ids.empty() && t > 0 && doc_ids[i] != doc_ids[i - 1]) {
      s.doc_start = s.n + t;
      reset[i] = 1;
      any_reset = true;
    }
    key_start[i] = static_cast<int32_t>(s.doc_start);
    key_start_local[i] = first_key(cfg_.base.sliding_window, s.doc_start, s.n + t);
    pos[i] = static_cast<int32_t>(s.n + t - s.doc_start);
  }
  ops_->upload(rows_of(ws.ids, T), ids.data());
  ops_->upload(rows_of(ws.pos, T), pos.data());
  ops_->upload(rows_of(ws.key_start, T), key_start.data());
  ops_->upload(rows_of(ws.key_start_local, T), key_start_local.data());
  ops_->upload(rows_of(ws.reset, T), reset.data());
  return any_reset;
}

HostTensor Student::forward(std::span<const int32_t> ids, std::span<const int32_t> doc_ids, ModelState* state,
                            StudentCapture* capture) const {
  const int64_t T = static_cast<int64_t>(ids.size()), C = cfg_.base.hidden_size;
  if (T == 0) return HostTensor(Shape{0, cfg_.base.vocab_size});
  if (!doc_ids.empty() && doc_ids.size() != ids.size())
    fail("student forward: {} document ids for {} tokens", doc_ids.size(), ids.size());
  std::unique_ptr<ModelState> fresh;
  if (!state) state = (fresh = new_state(T)).get();
  auto* s = dynamic_cast<StudentState*>(state);
  if (!s) fail("student: forward was given another model's state");
  if (capture) capture->mix_output.assign(layers_.size(), HostTensor(Shape{T, C}));
  Workspace ws = make_workspace(T, T);
  const bool reset = upload_tokens(ws, *s, ids, doc_ids);
  run_layers(ws, *s, T, reset, capture);
  head(ws, 0, T);
  HostTensor logits(Shape{T, cfg_.base.vocab_size});
  ops_->download(logits.values.data(), ws.logits);
  return logits;
}

void Student::forward_chunks(std::span<const int32_t> ids, std::span<const int32_t> doc_ids, int64_t chunk,
                             const std::function<void(int64_t, const HostTensor&)>& each) const {
  const int64_t T = static_cast<int64_t>(ids.size()), V = cfg_.base.vocab_size;
  if (T == 0) return;
  if (chunk < 1) fail("student forward: chunks of {} rows", chunk);
  if (!doc_ids.empty() && doc_ids.size() != ids.size())
    fail("student forward: {} document ids for {} tokens", doc_ids.size(), ids.size());
  const std::unique_ptr<ModelState> fresh = new_state(T);
  auto* s = dynamic_cast<StudentState*>(fresh.get());
  const int64_t n_max = std::min(chunk, T);
  Workspace ws = make_workspace(T, n_max);
  const bool reset = upload_tokens(ws, *s, ids, doc_ids);
  run_layers(ws, *s, T, reset, nullptr);
  HostTensor logits(Shape{n_max, V});
  for (int64_t t0 = 0; t0 < T; t0 += n_max) {
    const int64_t n = std::min(n_max, T - t0);
    head(ws, t0, n);
    logits.shape = Shape{n, V};
    ops_->download(logits.values.data(), rows_of(ws.logits, n));
    each(t0, logits);
  }
}

std::vector<float> Student::extend(ModelState& state, std::span<const int32_t> ids) const {
  auto* s = dynamic_cast<StudentState*>(&state);
  if (!s) fail("student: extend was given another model's state");
  const int64_t n_new = static_cast<int64_t>(ids.size());
  if (n_new == 0) fail("student: extend needs at least one token");
  Workspace& ws = s->ws;
  int64_t T = 0;
  for (int64_t done = 0; done < n_new; done += T) {
    T = std::min(ws.rows, n_new - done);
    upload_tokens(ws, *s, ids.subspan(static_cast<size_t>(done), static_cast<size_t>(T)), {});
    run_layers(ws, *s, T, false, nullptr);
  }
  head(ws, T - 1, 1);
  std::vector<float> logits(static_cast<size_t>(cfg_.base.vocab_size));
  ops_->download(logits.data(), ws.logits);
  return logits;
}

}  // namespace arwkv
