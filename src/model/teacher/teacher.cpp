// Running the teacher: the decoder layer as two blocks that read like SPEC §2, the whole-sequence
// pass (packed documents, capture) and incremental decoding over the KV cache.
#include "model/teacher/teacher.h"

#include "model/family_parts.h"
#include "model/teacher/teacher_parts.h"

namespace arwkv {
namespace {

Tensor rows_of(const Tensor& t, int64_t n) { return t.slice_rows(0, n); }
const Tensor* bias_or_null(const Tensor& b) { return b.data ? &b : nullptr; }

// One layer's slab [capacity, Hkv·d] of a cache [L, capacity, Hkv·d]; a cache of one slab is
// shared by all layers (the whole-sequence pass keeps no keys between layers).
Tensor layer_slab(const Tensor& cache, int64_t layer) {
  const int64_t l = cache.dim(0) == 1 ? 0 : layer;
  return cache.slice_rows(l, l + 1).reshape({cache.dim(1), cache.dim(2)});
}

}  // namespace

// ws.o = o_proj(attention(rope(q), rope(k), v)) over xn = RMSNorm(x) (q and k normalised per head
// before RoPE where the family does so; layer l's window and RoPE base); keys and values of the T
// new tokens are written to rows n_past .. n_past+T of the layer's cache slab.
void Teacher::attention_block(int64_t l, Workspace& ws, int64_t T, Tensor k_all, Tensor v_all, int64_t n_past,
                              bool first_keys) const {
  const Layer& w = layers_[static_cast<size_t>(l)];
  Ops& ops = *ops_;
  const int H = static_cast<int>(cfg_.n_heads), Hkv = static_cast<int>(cfg_.n_kv_heads);
  const int d = static_cast<int>(cfg_.head_dim);
  Tensor x = rows_of(ws.x, T), xn = rows_of(ws.xn, T), q = rows_of(ws.q, T), att = rows_of(ws.att, T);
  Tensor pos = rows_of(ws.pos, T);
  Tensor k_new = k_all.slice_rows(n_past, n_past + T), v_new = v_all.slice_rows(n_past, n_past + T);

  ops.rmsnorm(xn, x, w.attn_norm, cfg_.rms_eps);
  ops.matmul(q, xn, w.wq, bias_or_null(w.bq));
  ops.matmul(k_new, xn, w.wk, bias_or_null(w.bk));
  ops.matmul(v_new, xn, w.wv, bias_or_null(w.bv));
  head_rmsnorm(ops, q, w.q_norm, H, d, cfg_.rms_eps);
  head_rmsnorm(ops, k_new, w.k_norm, Hkv, d, cfg_.rms_eps);
  const float theta = layer_rope_theta(cfg_, l);
  ops.rope(q, pos, H, d, theta, rope_factors_.tensor);
  ops.rope(k_new, pos, Hkv, d, theta, rope_factors_.tensor);
  AttentionArgs args{.n_heads = H, .n_kv_heads = Hkv, .head_dim = d, .q_offset = n_past, .scale = cfg_.attn_scale};
  const bool local = is_local_layer(cfg_, l);
  ops.attention(att, q, k_all.slice_rows(0, n_past + T), v_all.slice_rows(0, n_past + T),
                local ? rows_of(ws.key_start_local, T) : first_keys ? rows_of(ws.key_start, T) : Tensor{}, args);
  ops.matmul(rows_of(ws.o, T), att, w.wo);
}

// ws.ids/pos (and key_start with first_keys, key_start_local with a window) hold T tokens; leaves
// the residual stream in ws.x.
void Teacher::run_layers(Workspace& ws, int64_t T, const Tensor& k_cache, const Tensor& v_cache, int64_t n_past,
                         bool first_keys, TeacherCapture* capture) const {
  Ops& ops = *ops_;
  const Tensor x = rows_of(ws.x, T), xn = rows_of(ws.xn, T), o = rows_of(ws.o, T);
  ops.embedding(x, embed_, rows_of(ws.ids, T));
  scale_embedding(ops, x, cfg_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const int64_t li = static_cast<int64_t>(l);
    attention_block(li, ws, T, layer_slab(k_cache, li), layer_slab(v_cache, li), n_past, first_keys);
    if (capture) {
      ops.download(capture->attn_input[l].values.data(), xn);
      ops.download(capture->attn_output[l].values.data(), o);
    }
    post_norm(ops, o, layers_[l].post_attn_norm, cfg_.rms_eps);
    ops.add(x, x, o);
    mlp_block(ops, layers_[l], cfg_, x, xn, rows_of(ws.gate, T), rows_of(ws.up, T), o);
  }
}

// ws.logits[0 .. n_rows) = head(RMSNorm(x[first_row .. first_row + n_rows))).
void Teacher::head(Workspace& ws, int64_t first_row, int64_t n_rows) const {
  Tensor xn = ws.xn.slice_rows(first_row, first_row + n_rows);
  ops_->rmsnorm(xn, ws.x.slice_rows(first_row, first_row + n_rows), final_norm_, cfg_.rms_eps);
  ops_->matmul(rows_of(ws.logits, n_rows), xn, lm_head_);
}

Teacher::Workspace Teacher::run_sequence(std::span<const int32_t> ids, std::span<const int32_t> doc_ids,
                                         TeacherCapture* capture, bool logits) const {
  const int64_t T = static_cast<int64_t>(ids.size()), C = cfg_.hidden_size;
  if (!doc_ids.empty() && doc_ids.size() != ids.size())
    fail("teacher forward: {} document ids for {} tokens", doc_ids.size(), ids.size());
  std::vector<int32_t> pos(ids.size()), key_start(ids.size()), key_start_local(ids.size());
  int32_t start = 0;
  for (int32_t t = 0; t < static_cast<int32_t>(T); ++t) {
    if (!doc_ids.empty() && t > 0 && doc_ids[t] != doc_ids[t - 1]) start = t;
    pos[t] = t - start;
    key_start[t] = start;
    key_start_local[t] = first_key(cfg_.sliding_window, start, t);
  }
  if (capture) {
    capture->attn_input.assign(layers_.size(), HostTensor(Shape{T, C}));
    capture->attn_output.assign(layers_.size(), HostTensor(Shape{T, C}));
  }
  Workspace ws = make_workspace(T, logits ? T : 0);
  ops_->upload(ws.ids, ids.data());
  ops_->upload(ws.pos, pos.data());
  ops_->upload(ws.key_start, key_start.data());
  ops_->upload(ws.key_start_local, key_start_local.data());
  run_layers(ws, T, ws.k, ws.v, 0, !doc_ids.empty(), capture);
  if (logits) head(ws, 0, T);
  return ws;
}

HostTensor Teacher::forward(std::span<const int32_t> ids, std::span<const int32_t> doc_ids,
                            TeacherCapture* capture) const {
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) return HostTensor(Shape{0, cfg_.vocab_size});
  const Workspace ws = run_sequence(ids, doc_ids, capture, true);
  HostTensor logits(Shape{T, cfg_.vocab_size});
  ops_->download(logits.values.data(), ws.logits);
  return logits;
}

HostTensor Teacher::final_hidden(std::span<const int32_t> ids, std::span<const int32_t> doc_ids,
                                 TeacherCapture* capture) const {
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) return HostTensor(Shape{0, cfg_.hidden_size});
  const Workspace ws = run_sequence(ids, doc_ids, capture, false);
  const Tensor xn = ws.xn.slice_rows(0, T);
  ops_->rmsnorm(xn, ws.x.slice_rows(0, T), final_norm_, cfg_.rms_eps);
  HostTensor hidden(Shape{T, cfg_.hidden_size});
  ops_->download(hidden.values.data(), xn);
  return hidden;
}

void Teacher::head_rows(Tensor logits, Tensor hidden) const {
  if (logits.rows() != hidden.rows() || logits.cols() != cfg_.vocab_size || hidden.cols() != cfg_.hidden_size)
    fail("teacher head: logits {} for hidden states {}", logits.shape.str(), hidden.shape.str());
  ops_->matmul(logits, hidden, lm_head_);
}

void Teacher::capture_layers(std::span<const int32_t> ids, std::span<const int32_t> doc_ids,
                             TeacherCapture& capture) const {
  if (ids.empty()) fail("teacher forward: no tokens to capture");
  run_sequence(ids, doc_ids, &capture, false);
}

std::unique_ptr<ModelState> Teacher::new_state(int64_t max_tokens) const {
  if (max_tokens <= 0) fail("teacher: a state must hold at least one token, asked for {}", max_tokens);
  if (max_tokens > kMaxStateTokens)
    fail("teacher: a state of {} tokens is beyond the {} a KV cache may hold", max_tokens, kMaxStateTokens);
  constexpr int64_t kChunk = 512;  // prefill runs in chunks of this many tokens
  auto s = std::make_unique<TeacherState>();
  const int64_t kv_dim = cfg_.n_kv_heads * cfg_.head_dim;
  const Shape cache_shape{cfg_.n_layers, max_tokens, kv_dim};
  const size_t half = static_cast<size_t>(cache_shape.numel()) * sizeof(float);
  s->cache = ops_->alloc(2 * half);
  s->k = Tensor{s->cache.data(), cache_shape, DType::F32, ops_->device()};
  s->v = Tensor{static_cast<char*>(s->cache.data()) + half, cache_shape, DType::F32, ops_->device()};
  s->ws = make_workspace(std::min(max_tokens, kChunk), 1);
  s->host_pos.resize(static_cast<size_t>(s->ws.rows));
  s->capacity = max_tokens;
  return s;
}

std::vector<float> Teacher::extend(ModelState& state, std::span<const int32_t> ids) const {
  auto* s = dynamic_cast<TeacherState*>(&state);
  if (!s) fail("teacher: extend was given another model's state");
  const int64_t n_new = static_cast<int64_t>(ids.size());
  if (n_new == 0) fail("teacher: extend needs at least one token");
  if (s->n + n_new > s->capacity)
    fail("teacher: the context is full: {} tokens held, {} more do not fit in {}", s->n, n_new, s->capacity);
  Workspace& ws = s->ws;
  int64_t T = 0;
  for (int64_t done = 0; done < n_new; done += T) {
    T = std::min(ws.rows, n_new - done);
    for (int64_t t = 0; t < T; ++t) s->host_pos[static_cast<size_t>(t)] = static_cast<int32_t>(s->n + t);
    ops_->upload(rows_of(ws.ids, T), ids.data() + done);
    ops_->upload(rows_of(ws.pos, T), s->host_pos.data());
    if (cfg_.sliding_window > 0) {  // the window's first keys, reusing host_pos once it is on the device
      for (int64_t t = 0; t < T; ++t)
        s->host_pos[static_cast<size_t>(t)] = first_key(cfg_.sliding_window, 0, s->n + t);
      ops_->upload(rows_of(ws.key_start_local, T), s->host_pos.data());
    }
    run_layers(ws, T, s->k, s->v, s->n, false, nullptr);
    s->n += T;
  }
  head(ws, T - 1, 1);
  std::vector<float> logits(static_cast<size_t>(cfg_.vocab_size));
  ops_->download(logits.data(), ws.logits);
  return logits;
}

std::vector<StateTensor> TeacherState::tensors() {
  std::vector<StateTensor> out;
  const int64_t L = k.dim(0), kv_dim = k.dim(2);
  for (int64_t l = 0; l < L; ++l) {
    for (auto [name, cache] : {std::pair{"k", k}, std::pair{"v", v}}) {
      Tensor rows = cache;
      rows.data = static_cast<char*>(cache.data) + static_cast<size_t>(l * capacity * kv_dim) * sizeof(float);
      rows.shape = Shape{n, kv_dim};
      out.push_back({fmt::format("layers.{}.{}", l, name), rows});
    }
  }
  return out;
}

void TeacherState::set_n_tokens(int64_t n_tokens) {
  if (n_tokens < 0 || n_tokens > capacity)
    fail("teacher: a state of {} tokens does not fit a context of {}", n_tokens, capacity);
  n = n_tokens;
}

}  // namespace arwkv
