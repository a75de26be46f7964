// Building the teacher: checking the config, reading every tensor of the architecture's list from
// the checkpoint into one backend buffer, and carving the per-layer views.
#include <fmt/format.h>

#include <atomic>
#include <map>
#include <vector>

#include "core/finite.h"
#include "formats/quant.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher_parts.h"
#include "model/teacher/teacher_tensors.h"

namespace arwkv {
namespace {

std::atomic<bool> g_compact_weights{true};

constexpr size_t kAlign = 64;  // every tensor starts on a cache line

size_t aligned_bytes(const Shape& s, DType dt = DType::F32) {
  const Tensor t{nullptr, s, dt, Device::CPU};
  return (t.nbytes() + kAlign - 1) / kAlign * kAlign;
}

// Refuses (or, when allowed, warns about) a compact tensor with non-finite values, as fp32 ones are.
void check_finite_stored(const Tensor& host, const std::string& file, const std::string& name) {
  const int64_t rows = host.rows(), cols = host.cols();
  const size_t row_bytes = dtype_row_bytes(host.dtype, cols);
  std::vector<float> values(static_cast<size_t>(cols));
  const auto* bytes = static_cast<const uint8_t*>(host.data);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(host.dtype, bytes + static_cast<size_t>(r) * row_bytes, values.data(), cols);
    if (count_nonfinite(values) == 0) continue;
    values.resize(static_cast<size_t>(rows * cols));  // the rare bad file: the whole tensor, for the message
    for (int64_t i = 0; i < rows; ++i)
      dequantize_row(host.dtype, bytes + static_cast<size_t>(i) * row_bytes, values.data() + i * cols, cols);
    check_finite_weights(values, file, name);
    return;
  }
}

void check_config(const ModelConfig& c, const std::string& path) {
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.n_layers <= 0)
    fail("{}: config has non-positive sizes (vocab {}, hidden {}, ffn {}, layers {})", path, c.vocab_size,
         c.hidden_size, c.intermediate_size, c.n_layers);
  if (c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    fail("{}: {} attention heads cannot share {} key/value heads", path, c.n_heads, c.n_kv_heads);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) fail("{}: head_dim {} must be even and positive", path, c.head_dim);
  if (!(c.rms_eps > 0.0f) || !(c.rope_theta > 0.0f))
    fail("{}: rms_norm_eps {} and rope_theta {} must be positive", path, c.rms_eps, c.rope_theta);
}

}  // namespace

void set_compact_weights_default(bool compact) { g_compact_weights = compact; }
bool compact_weights_default() { return g_compact_weights; }

Teacher::Teacher(const Checkpoint& ckpt, Ops& ops, TeacherOptions options) : cfg_(ckpt.config()), ops_(&ops) {
  check_config(cfg_, ckpt.path());
  // An untied model without lm_head.weight falls back to the embedding, as HF does.
  bool tied = cfg_.tie_embeddings || !ckpt.has("lm_head.weight");
  cfg_.tie_embeddings = tied;

  // Matrices may stay compact; norms and biases are fp32 (the ops read them as such).
  std::vector<std::pair<TensorSpec, DType>> specs;
  size_t total = 0;
  for (TensorSpec& s : teacher_tensors(cfg_)) {
    if (s.name == "lm_head.weight" && tied) continue;
    if (!ckpt.has(s.name)) fail("{}: missing tensor {} {}", ckpt.path(), s.name, s.shape.str());
    DType dt = options.compact && s.shape.ndim == 2 ? ckpt.stored_dtype(s.name) : DType::F32;
    if (s.shape[s.shape.ndim - 1] % dtype_block(dt) != 0) dt = DType::F32;
    total += aligned_bytes(s.shape, dt);
    specs.emplace_back(std::move(s), dt);
  }
  weights_ = ops.alloc(total);
  std::map<std::string, Tensor> views;
  size_t offset = 0;
  std::vector<uint8_t> staging;  // a compact tensor on its way to a device other than the host
  for (const auto& [s, dt] : specs) {
    Tensor t{static_cast<char*>(weights_.data()) + offset, s.shape, dt, ops.device()};
    if (dt == DType::F32) {
      HostTensor host = ckpt.load(s.name);
      if (!(host.shape == s.shape))
        fail("{}: tensor {} has shape {}, the config implies {}", ckpt.path(), s.name, host.shape.str(), s.shape.str());
      check_finite_weights(host.values, ckpt.path(), s.name);
      ops.upload(t, host.values.data());
    } else {  // the shape was checked when the checkpoint opened
      Tensor host = t;
      if (ops.device() != Device::CPU) {
        staging.resize(t.nbytes());
        host.data = staging.data();
        host.device = Device::CPU;
      }
      ckpt.load_stored(s.name, host.data);
      check_finite_stored(host, ckpt.path(), s.name);
      if (ops.device() != Device::CPU) ops.upload(t, host.data);
    }
    views[s.name] = t;
    offset += aligned_bytes(s.shape, dt);
  }

  auto get = [&](const std::string& name) { return views.count(name) ? views.at(name) : Tensor{}; };
  rope_factors_ = RopeFactors(ops, cfg_);
  embed_ = get("model.embed_tokens.weight");
  final_norm_ = get("model.norm.weight");
  lm_head_ = tied ? embed_ : get("lm_head.weight");
  const Family& fam = family(cfg_.arch);
  for (int64_t l = 0; l < cfg_.n_layers; ++l) {
    auto w = [&](const char* norm_or_suffix) {  // a family's norm name (nullptr: none), or a tensor suffix
      if (!norm_or_suffix) return Tensor{};
      const std::string s = norm_or_suffix;
      return get(layer_tensor_name(l, s.ends_with(".weight") || s.ends_with(".bias") ? s : s + ".weight"));
    };
    layers_.push_back(Layer{
        .attn_norm = w("input_layernorm.weight"),
        .wq = w("self_attn.q_proj.weight"),
        .wk = w("self_attn.k_proj.weight"),
        .wv = w("self_attn.v_proj.weight"),
        .bq = w("self_attn.q_proj.bias"),
        .bk = w("self_attn.k_proj.bias"),
        .bv = w("self_attn.v_proj.bias"),
        .q_norm = w("self_attn.q_norm.weight"),
        .k_norm = w("self_attn.k_norm.weight"),
        .wo = w("self_attn.o_proj.weight"),
        .mlp_norm = w(fam.mlp_norm),
        .w_gate = w("mlp.gate_proj.weight"),
        .w_up = w("mlp.up_proj.weight"),
        .w_down = w("mlp.down_proj.weight"),
        .post_attn_norm = w(fam.post_attn_norm),
        .post_mlp_norm = w(fam.post_mlp_norm),
    });
  }
}

Teacher::~Teacher() = default;

size_t Teacher::weight_bytes() const { return weights_.size(); }

Teacher::Workspace Teacher::make_workspace(int64_t rows, int64_t logit_rows) const {
  const int64_t C = cfg_.hidden_size, F = cfg_.intermediate_size, V = cfg_.vocab_size;
  const int64_t q_dim = cfg_.n_heads * cfg_.head_dim, kv_dim = cfg_.n_kv_heads * cfg_.head_dim;
  const Shape shapes[] = {{rows}, {rows}, {rows}, {rows}, {rows, C}, {rows, C}, {rows, q_dim}, {rows, q_dim},
                          {rows, C}, {1, rows, kv_dim}, {1, rows, kv_dim}, {rows, F}, {rows, F},
                          {logit_rows, V}};
  size_t total = 0;
  for (const Shape& s : shapes) total += aligned_bytes(s);
  Workspace ws;
  ws.buffer = ops_->alloc(total);
  ws.rows = rows;
  size_t offset = 0;
  int i = 0;
  auto carve = [&](DType dt) {
    const Shape& s = shapes[i++];
    Tensor t{static_cast<char*>(ws.buffer.data()) + offset, s, dt, ops_->device()};
    offset += aligned_bytes(s);
    return t;
  };
  ws.ids = carve(DType::I32);
  ws.pos = carve(DType::I32);
  ws.key_start = carve(DType::I32);
  ws.key_start_local = carve(DType::I32);
  ws.x = carve(DType::F32);
  ws.xn = carve(DType::F32);
  ws.q = carve(DType::F32);
  ws.att = carve(DType::F32);
  ws.o = carve(DType::F32);
  ws.k = carve(DType::F32);
  ws.v = carve(DType::F32);
  ws.gate = carve(DType::F32);
  ws.up = carve(DType::F32);
  ws.logits = carve(DType::F32);
  return ws;
}

}  // namespace arwkv
