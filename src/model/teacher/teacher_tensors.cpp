// The tensor list of the Llama-family teacher (see teacher_tensors.h).
#include "model/teacher/teacher_tensors.h"

#include <fmt/format.h>

namespace arwkv {

std::string layer_tensor_name(int64_t layer, const std::string& suffix) {
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

std::vector<TensorSpec> teacher_tensors(const ModelConfig& cfg) {
  const int64_t C = cfg.hidden_size, F = cfg.intermediate_size, V = cfg.vocab_size;
  const int64_t q_dim = cfg.n_heads * cfg.head_dim, kv_dim = cfg.n_kv_heads * cfg.head_dim;
  std::vector<TensorSpec> list = {{"model.embed_tokens.weight", {V, C}}};
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    auto add = [&](const char* suffix, Shape s) { list.push_back({layer_tensor_name(l, suffix), s}); };
    add("input_layernorm.weight", {C});
    add("self_attn.q_proj.weight", {q_dim, C});
    add("self_attn.k_proj.weight", {kv_dim, C});
    add("self_attn.v_proj.weight", {kv_dim, C});
    if (has_qkv_bias(cfg)) {
      add("self_attn.q_proj.bias", {q_dim});
      add("self_attn.k_proj.bias", {kv_dim});
      add("self_attn.v_proj.bias", {kv_dim});
    }
    add("self_attn.o_proj.weight", {C, q_dim});
    add("post_attention_layernorm.weight", {C});
    add("mlp.gate_proj.weight", {F, C});
    add("mlp.up_proj.weight", {F, C});
    add("mlp.down_proj.weight", {C, F});
  }
  list.push_back({"model.norm.weight", {C}});
  list.push_back({"lm_head.weight", {V, C}, false});
  return list;
}

}  // namespace arwkv
