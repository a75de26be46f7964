// The arwkv7 tensor table and the data transforms between HF and GGUF layouts (see arwkv7_names.h).
#include "export/arwkv7_names.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "model/teacher/teacher_tensors.h"

namespace arwkv {
namespace {

HostTensor transposed(const HostTensor& t) {
  ARWKV_ASSERT(t.shape.ndim == 2, "transpose of a {}-d tensor", t.shape.ndim);
  const int64_t R = t.shape[0], C = t.shape[1];
  HostTensor out(Shape{C, R});
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) out.values[static_cast<size_t>(c * R + r)] = t.values[static_cast<size_t>(r * C + c)];
  return out;
}

HostTensor reshaped(HostTensor t, const Shape& s) {
  ARWKV_ASSERT(t.shape.numel() == s.numel(), "reshape {} to {}", t.shape.str(), s.str());
  t.shape = s;
  return t;
}

// The GGUF tensors of time-mix layer l, in the order llama.cpp's loader creates them.
void add_time_mix(const StudentConfig& c, int64_t l, std::vector<Arwkv7Tensor>& out) {
  const int64_t C = c.base.hidden_size;
  auto blk = [&](const std::string& what) { return fmt::format("blk.{}.{}", l, what); };
  auto tm = [&](const std::string& suffix) { return time_mixer_name(l, suffix); };
  auto add = [&](const std::string& gguf, std::vector<std::string> hf, Shape shape, Arwkv7Transform tr, bool big = false) {
    out.push_back({blk(gguf), std::move(hf), shape, tr, big});
  };
  using T = Arwkv7Transform;
  add("attn_norm.weight", {layer_tensor_name(l, "input_layernorm.weight")}, {C}, T::Copy);
  std::vector<std::string> planes;
  for (const char* p : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"})
    if (c.has_gate || std::string(p) != "x_g") planes.push_back(tm(p));
  const int64_t P = static_cast<int64_t>(planes.size());
  add("time_mix_lerp_fused.weight", planes, {P, 1, 1, C}, T::LerpFused);
  auto lora = [&](const char* n, int rank, const char* src, bool dummy) {
    add(fmt::format("time_mix_{}0.weight", n), {tm(fmt::format("{}0", src))}, {C}, dummy ? T::DummyVector : T::Vector);
    add(fmt::format("time_mix_{}1.weight", n), {tm(fmt::format("{}1", src))}, {rank, C},
        dummy ? T::DummyMatrix : T::Transpose);
    add(fmt::format("time_mix_{}2.weight", n), {tm(fmt::format("{}2", src))}, {C, rank},
        dummy ? T::DummyMatrix : T::Transpose);
  };
  lora("w", c.decay_lora, "w", false);
  lora("a", c.iclr_lora, "a", false);
  if (c.has_value_residual(l)) lora("v", c.value_lora, "v", false);
  else lora("v", c.iclr_lora, "a", true);  // the first layer's unused dummies
  if (c.has_gate) {
    add("time_mix_g1.weight", {tm("g1")}, {c.gate_lora, C}, T::Transpose);
    add("time_mix_g2.weight", {tm("g2")}, {C, c.gate_lora}, T::Transpose);
  }
  add("time_mix_k_k.weight", {tm("k_k")}, {C}, T::Vector);
  add("time_mix_k_a.weight", {tm("k_a")}, {C}, T::Vector);
  add("time_mix_r_k.weight", {tm("r_k")}, {C}, T::Vector);
  add("time_mix_key.weight", {tm("key.weight")}, {C, C}, T::Copy, true);
  add("time_mix_value.weight", {tm("value.weight")}, {C, C}, T::Copy, true);
  add("time_mix_receptance.weight", {tm("receptance.weight")}, {C, C}, T::Copy, true);
  if (c.has_group_norm) {
    add("time_mix_ln.weight", {tm("ln_x.weight")}, {C}, T::Copy);
    add("time_mix_ln.bias", {tm("ln_x.bias")}, {C}, T::Copy);
  }
  add("time_mix_output.weight", {tm("output.weight")}, {C, C}, T::Copy, true);
}

}  // namespace

std::string arwkv7_key(const std::string& suffix) { return std::string(kArwkv7Arch) + "." + suffix; }

void check_arwkv7_exportable(const StudentConfig& c, const std::string& source) {
  const Family& fam = family(c.base.arch);
  std::vector<std::string> missing;  // the family's parts that llama.cpp's arwkv7 graph does not have
  if (fam.post_attn_norm || fam.post_mlp_norm) missing.push_back("norms after the time mixing and the MLP");
  if (fam.mlp_activation != Activation::Silu) missing.push_back("a GELU MLP");
  if (fam.embed_scaled) missing.push_back("an embedding scaled by sqrt(hidden size)");
  if (!missing.empty())
    fail("{}: a student of a {} teacher has {}, which llama.cpp's arwkv7 cannot represent; `export --to hf` "
         "writes it",
         source, fam.name, fmt::join(missing, ", "));
  if (!c.pure_rwkv()) {
    std::vector<int64_t> kept;
    for (int64_t l = 0; l < c.base.n_layers; ++l)
      if (!c.is_wkv_layer(l)) kept.push_back(l);
    fail("{}: layers {} keep softmax attention; llama.cpp's arwkv7 has time-mix layers only (hybrid students "
         "cannot be exported to GGUF)",
         source, fmt::join(kept, ","));
  }
}

std::vector<Arwkv7Tensor> arwkv7_tensor_list(const StudentConfig& c) {
  const ModelConfig& b = c.base;
  const int64_t C = b.hidden_size, V = b.vocab_size, F = b.intermediate_size;
  using T = Arwkv7Transform;
  std::vector<Arwkv7Tensor> out;
  out.push_back({"token_embd.weight", {"model.embed_tokens.weight"}, {V, C}, T::Copy, true});
  out.push_back({"output_norm.weight", {"model.norm.weight"}, {C}, T::Copy, false});
  out.push_back({"output.weight", {b.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"}, {V, C},
                 T::Copy, true});
  for (int64_t l = 0; l < b.n_layers; ++l) {
    add_time_mix(c, l, out);
    auto blk = [&](const char* what) { return fmt::format("blk.{}.{}", l, what); };
    out.push_back({blk("ffn_norm.weight"), {layer_tensor_name(l, "post_attention_layernorm.weight")}, {C}, T::Copy});
    out.push_back({blk("ffn_gate.weight"), {layer_tensor_name(l, "mlp.gate_proj.weight")}, {F, C}, T::Copy, true});
    out.push_back({blk("ffn_up.weight"), {layer_tensor_name(l, "mlp.up_proj.weight")}, {F, C}, T::Copy, true});
    out.push_back({blk("ffn_down.weight"), {layer_tensor_name(l, "mlp.down_proj.weight")}, {C, F}, T::Copy, true});
  }
  return out;
}

HostTensor arwkv7_from_hf(const Arwkv7Tensor& t, const std::vector<HostTensor>& hf) {
  ARWKV_ASSERT(hf.size() == t.hf_names.size(), "{}: {} sources for {} names", t.gguf_name, hf.size(), t.hf_names.size());
  switch (t.transform) {
    case Arwkv7Transform::LerpFused: {
      HostTensor out(t.gguf_shape);
      const size_t C = static_cast<size_t>(t.gguf_shape[3]);
      for (size_t p = 0; p < hf.size(); ++p) {
        ARWKV_ASSERT(hf[p].values.size() == C, "{}: plane {} has {} values", t.gguf_name, p, hf[p].values.size());
        std::copy(hf[p].values.begin(), hf[p].values.end(), out.values.begin() + static_cast<ptrdiff_t>(p * C));
      }
      return out;
    }
    case Arwkv7Transform::Transpose:
    case Arwkv7Transform::DummyMatrix: return reshaped(transposed(hf[0]), t.gguf_shape);
    default: return reshaped(hf[0], t.gguf_shape);
  }
}

HostTensor arwkv7_to_hf(const Arwkv7Tensor& t, const HostTensor& g, const std::string& hf_name, const Shape& hf_shape) {
  switch (t.transform) {
    case Arwkv7Transform::LerpFused: {
      const auto it = std::find(t.hf_names.begin(), t.hf_names.end(), hf_name);
      ARWKV_ASSERT(it != t.hf_names.end(), "{} holds no {}", t.gguf_name, hf_name);
      const int64_t p = it - t.hf_names.begin(), n = hf_shape.numel();
      HostTensor out(hf_shape);
      std::copy_n(g.values.begin() + p * n, n, out.values.begin());
      return out;
    }
    case Arwkv7Transform::Transpose: return reshaped(transposed(reshaped(g, Shape{hf_shape[1], hf_shape[0]})), hf_shape);
    default: return reshaped(g, hf_shape);
  }
}

}  // namespace arwkv
