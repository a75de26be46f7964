// Building the student: reading every tensor of its list from the checkpoint into one backend
// buffer (LoRA matrices transposed for matmul, the token-shift mixes stacked), carving the
// per-layer views, and sizing workspaces and states.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/finite.h"
#include "core/half.h"
#include "model/student/student_checkpoint.h"
#include "model/student/student_parts.h"

namespace arwkv {
namespace {

constexpr size_t kAlign = 64;  // every tensor starts on a cache line

size_t aligned_bytes(const Shape& s, DType dt = DType::F32) {
  const size_t n = s.ndim ? static_cast<size_t>(s.numel() / s[s.ndim - 1]) * dtype_row_bytes(dt, s[s.ndim - 1]) : 4;
  return (n + kAlign - 1) / kAlign * kAlign;
}

// fp32 values as `dt` (F16 or BF16), rounded to nearest even.
std::vector<uint16_t> to_half(const std::vector<float>& v, DType dt) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = dt == DType::BF16 ? fp32_to_bf16(v[i]) : fp32_to_fp16(v[i]);
  return out;
}

bool is_lora_matrix(const std::string& name) {
  for (const char* s : {"w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"})
    if (name.ends_with(std::string(".time_mixer.") + s)) return true;
  return false;
}

HostTensor transposed(const HostTensor& t) {
  const int64_t R = t.shape[0], C = t.shape[1];
  HostTensor out(Shape{C, R});
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) out.values[static_cast<size_t>(c * R + r)] = t.values[static_cast<size_t>(r * C + c)];
  return out;
}

// Carves consecutive aligned tensors out of one buffer.
struct Carver {
  char* base;
  size_t offset = 0;
  Device device;
  Tensor take(const Shape& s, DType dt = DType::F32) {
    Tensor t{base + offset, s, dt, device};
    offset += aligned_bytes(s, dt);
    return t;
  }
};

}  // namespace

bool student_tensor_may_be_compact(const TensorSpec& spec) {
  return spec.shape.ndim == 2 && spec.name.ends_with(".weight");
}

Student::Student(const StudentCheckpoint& ckpt, Ops& ops, const StudentOptions& options)
    : cfg_(ckpt.config()), ops_(&ops) {
  const std::vector<TensorSpec> specs = student_tensor_list(cfg_);
  const int64_t C = cfg_.base.hidden_size;
  n_planes_ = cfg_.has_gate ? 6 : 5;
  max_rank_ = std::max({cfg_.decay_lora, cfg_.iclr_lora, cfg_.value_lora, cfg_.gate_lora});
  if (options.frozen && *options.frozen != DType::F32 && *options.frozen != DType::BF16 && *options.frozen != DType::F16)
    fail("student: frozen matrices can be held as f32, bf16 or f16, not {}", dtype_name(*options.frozen));
  auto held_dtype = [&](const TensorSpec& s) {
    if (!student_tensor_may_be_compact(s) || (options.trains && options.trains(s.name))) return DType::F32;
    return options.frozen ? *options.frozen : ckpt.stored_dtype(s.name);
  };
  size_t total = 0;
  for (const TensorSpec& s : specs) total += aligned_bytes(s.shape, held_dtype(s));
  weights_ = ops.alloc(total);
  Carver carve{static_cast<char*>(weights_.data()), 0, ops.device()};

  std::map<std::string, Tensor> views;
  Tensor mix;
  for (const TensorSpec& s : specs) {
    HostTensor host = ckpt.load(s.name);
    check_finite_weights(host.values, ckpt.path(), s.name);
    const std::string suffix = s.name.substr(s.name.rfind('.') + 1);
    if (s.name.find(".time_mixer.x_") != std::string::npos) {
      // x_r .. x_g are consecutive in the list: one [P, C] tensor, plane by plane.
      static const std::string order = "rwkvag";
      const int64_t p = static_cast<int64_t>(order.find(suffix[2]));
      if (p == 0) mix = carve.take(Shape{n_planes_, C});
      ops.upload(mix.slice_rows(p, p + 1), host.values.data());
      views[s.name] = mix;
      continue;
    }
    if (is_lora_matrix(s.name)) host = transposed(host);
    if (host.shape.ndim == 3) host.shape = Shape{host.shape.numel()};  // [1, 1, C] vectors
    const DType dt = held_dtype(s);
    Tensor t = carve.take(host.shape, dt);
    if (dt == DType::F32)
      ops.upload(t, host.values.data());
    else
      ops.upload(t, to_half(host.values, dt).data());
    views[s.name] = t;
  }
  ARWKV_ASSERT(carve.offset <= total, "student weights overflow their buffer");

  auto get = [&](const std::string& name) { return views.count(name) ? views.at(name) : Tensor{}; };
  embed_ = get("model.embed_tokens.weight");
  final_norm_ = get("model.norm.weight");
  lm_head_ = cfg_.base.tie_embeddings ? embed_ : get("lm_head.weight");
  rope_factors_ = RopeFactors(ops, cfg_.base);
  int64_t n_wkv = 0, n_hybrid = 0;
  const Family& fam = family(cfg_.base.arch);
  for (int64_t l = 0; l < cfg_.base.n_layers; ++l) {
    auto w = [&](const char* suffix) { return get(layer_tensor_name(l, suffix)); };
    auto tm = [&](const char* suffix) { return get(time_mixer_name(l, suffix)); };
    Layer L;
    L.wkv = cfg_.is_wkv_layer(l);
    L.slot = L.wkv ? n_wkv++ : n_hybrid++;
    auto norm = [&](const char* name) { return name ? w((std::string(name) + ".weight").c_str()) : Tensor{}; };
    L.attn_norm = w("input_layernorm.weight");
    L.mlp_norm = norm(fam.mlp_norm);
    L.post_attn_norm = norm(fam.post_attn_norm);
    L.post_mlp_norm = norm(fam.post_mlp_norm);
    L.w_gate = w("mlp.gate_proj.weight");
    L.w_up = w("mlp.up_proj.weight");
    L.w_down = w("mlp.down_proj.weight");
    L.wq = w("self_attn.q_proj.weight"), L.wk = w("self_attn.k_proj.weight"), L.wv = w("self_attn.v_proj.weight");
    L.bq = w("self_attn.q_proj.bias"), L.bk = w("self_attn.k_proj.bias"), L.bv = w("self_attn.v_proj.bias");
    L.q_norm = w("self_attn.q_norm.weight"), L.k_norm = w("self_attn.k_norm.weight");
    L.wo = w("self_attn.o_proj.weight");
    L.mix = tm("x_r");
    L.receptance = tm("receptance.weight"), L.key = tm("key.weight");
    L.value = tm("value.weight"), L.output = tm("output.weight");
    L.w0 = tm("w0"), L.w1 = tm("w1"), L.w2 = tm("w2");
    L.a0 = tm("a0"), L.a1 = tm("a1"), L.a2 = tm("a2");
    L.v0 = tm("v0"), L.v1 = tm("v1"), L.v2 = tm("v2");
    L.g1 = tm("g1"), L.g2 = tm("g2");
    L.k_k = tm("k_k"), L.k_a = tm("k_a"), L.r_k = tm("r_k");
    L.ln_w = tm("ln_x.weight"), L.ln_b = tm("ln_x.bias");
    layers_.push_back(L);
  }
}

Student::~Student() = default;

size_t Student::weight_bytes() const { return weights_.size(); }

HostTensor Student::weight_to_host(Tensor w) const {
  HostTensor host(w.shape);
  if (w.dtype == DType::F32) {
    ops_->download(host.values.data(), w);
    return host;
  }
  ARWKV_ASSERT(w.dtype == DType::BF16 || w.dtype == DType::F16, "student weights are f32, bf16 or f16");
  std::vector<uint16_t> half(static_cast<size_t>(w.numel()));
  ops_->download(half.data(), w);
  for (size_t i = 0; i < half.size(); ++i)
    host.values[i] = w.dtype == DType::BF16 ? bf16_to_fp32(half[i]) : fp16_to_fp32(half[i]);
  return host;
}

Student::Workspace Student::make_workspace(int64_t rows, int64_t logit_rows) const {
  const ModelConfig& b = cfg_.base;
  const int64_t C = b.hidden_size, F = b.intermediate_size, q_dim = b.n_heads * b.head_dim;
  const Shape i32{rows}, rc{rows, C};
  const Shape shapes[] = {i32, i32, i32, i32, i32, rc, rc, rc, {n_planes_, rows, C}, {rows, std::max<int64_t>(max_rank_, 1)},
                          {rows, q_dim}, {rows, q_dim}, {rows, F}, {rows, F}, {logit_rows, b.vocab_size}};
  size_t total = 12 * aligned_bytes(rc);  // r .. g
  for (const Shape& s : shapes) total += aligned_bytes(s);
  Workspace ws;
  ws.buffer = ops_->alloc(total);
  ws.rows = rows;
  Carver carve{static_cast<char*>(ws.buffer.data()), 0, ops_->device()};
  ws.ids = carve.take(i32, DType::I32);
  ws.pos = carve.take(i32, DType::I32);
  ws.key_start = carve.take(i32, DType::I32);
  ws.reset = carve.take(i32, DType::I32);
  ws.key_start_local = carve.take(i32, DType::I32);
  for (Tensor* t : {&ws.x, &ws.xn, &ws.o}) *t = carve.take(rc);
  ws.mixed = carve.take(shapes[8]);
  for (Tensor* t : {&ws.r, &ws.k, &ws.v, &ws.w, &ws.a, &ws.b, &ws.y, &ws.v_first, &ws.w_logit, &ws.a_logit,
                    &ws.v_logit, &ws.g})
    *t = carve.take(rc);
  ws.lora = carve.take(shapes[9]);
  ws.q = carve.take(shapes[10]);
  ws.att = carve.take(shapes[11]);
  ws.gate = carve.take(shapes[12]);
  ws.up = carve.take(shapes[13]);
  ws.logits = carve.take(shapes[14]);
  ARWKV_ASSERT(carve.offset <= total, "student workspace overflow");
  return ws;
}

std::unique_ptr<ModelState> Student::new_state(int64_t max_tokens) const {
  constexpr int64_t kChunk = 512;  // prefill runs in chunks of this many tokens
  const ModelConfig& b = cfg_.base;
  const bool pure = cfg_.pure_rwkv();
  if (!pure && max_tokens <= 0) fail("student: a state must hold at least one token, asked for {}", max_tokens);
  if (!pure && max_tokens > kMaxStateTokens)
    fail("student: a state of {} tokens is beyond the {} a KV cache may hold", max_tokens, kMaxStateTokens);
  auto s = std::make_unique<StudentState>();
  const int64_t Lw = static_cast<int64_t>(cfg_.wkv_layers.size()), Lh = b.n_layers - Lw;
  const int64_t H = cfg_.n_wkv_heads(), N = cfg_.head_size, C = b.hidden_size;
  s->capacity = pure ? 0 : max_tokens;
  const Shape s_shape{std::max<int64_t>(Lw, 1), H, N, N}, xp_shape{std::max<int64_t>(Lw, 1), C};
  const Shape kv_shape{std::max<int64_t>(Lh, 1), std::max<int64_t>(s->capacity, 1), b.n_kv_heads * b.head_dim};
  s->memory = ops_->alloc(aligned_bytes(s_shape) + aligned_bytes(xp_shape) + (pure ? 0 : 2 * aligned_bytes(kv_shape)));
  Carver carve{static_cast<char*>(s->memory.data()), 0, ops_->device()};
  s->S = carve.take(s_shape);
  s->x_prev = carve.take(xp_shape);
  if (!pure) {
    s->k = carve.take(kv_shape);
    s->v = carve.take(kv_shape);
  }
  const int64_t rows = pure || max_tokens <= 0 ? kChunk : std::min(max_tokens, kChunk);
  s->ws = make_workspace(rows, 1);
  for (int64_t l = 0; l < b.n_layers; ++l) (cfg_.is_wkv_layer(l) ? s->wkv_layer_ids : s->hybrid_layer_ids).push_back(l);
  return s;
}

std::vector<StateTensor> StudentState::tensors() {
  std::vector<StateTensor> out;
  for (size_t i = 0; i < wkv_layer_ids.size(); ++i) {
    const int64_t j = static_cast<int64_t>(i);
    out.push_back({fmt::format("layers.{}.wkv_state", wkv_layer_ids[i]),
                   S.slice_rows(j, j + 1).reshape({S.dim(1), S.dim(2), S.dim(3)})});
    out.push_back({fmt::format("layers.{}.x_prev", wkv_layer_ids[i]), x_prev.slice_rows(j, j + 1).reshape({x_prev.dim(1)})});
  }
  for (size_t i = 0; i < hybrid_layer_ids.size() && n > 0; ++i) {
    const int64_t j = static_cast<int64_t>(i);
    for (auto [name, cache] : {std::pair{"k", k}, std::pair{"v", v}})
      out.push_back({fmt::format("layers.{}.{}_cache", hybrid_layer_ids[i], name),
                     cache.slice_rows(j, j + 1).reshape({cache.dim(1), cache.dim(2)}).slice_rows(0, n)});
  }
  return out;
}

void StudentState::set_n_tokens(int64_t n_tokens) {
  if (n_tokens < 0) fail("student state: {} tokens", n_tokens);
  if (!hybrid_layer_ids.empty() && n_tokens > capacity)
    fail("student state: {} tokens do not fit in a cache of {}", n_tokens, capacity);
  n = n_tokens;
  doc_start = 0;
}

}  // namespace arwkv
