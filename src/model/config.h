// The hyper-parameters of a Llama-family decoder, whatever file they came from, and the families
// it may belong to.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/activation.h"

namespace arwkv {

enum class Arch { Llama, Qwen2, Qwen3, Mistral, Gemma3 };

// What sets one decoder family's layers apart from another's. Loading, the teacher, the student
// and the formats read these fields; no code asks which family it has.
struct Family {
  Arch arch;
  const char* name;               // GGUF general.architecture, and HF model_type unless hf_name says
  const char* hf_name;            // HF model_type where it differs from name, else nullptr
  bool qkv_bias;                  // q/k/v projections always have biases (else: the config says)
  bool qk_norm;                   // RMSNorm over each head of q and of k, before RoPE
  bool gguf_rope_permuted;        // llama.cpp's converter permutes q/k rows for its RoPE
  int64_t default_max_position;   // max_position_embeddings when a config leaves it out
  bool tied_by_default;           // tie_word_embeddings when a config leaves it out (transformers'
                                  // default for the family's config class)
  bool sliding_window;            // config.json's sliding_window holds (in every layer, or in those
                                  // layer_types marks local); else nowhere unless use_sliding_window,
                                  // which is refused
  Activation mlp_activation;      // on the MLP's gate
  bool embed_scaled;              // the embedding's rows are multiplied by √C on the way in
  float norm_offset;              // RMSNorms weigh by (norm_offset + w) with HF's w; GGUF files and
                                  // our checkpoints store the sum, so only HF safetensors add it
  // The HF names (model.layers.N.{name}.weight) of the norms around the attention and the MLP;
  // nullptr where the family has none.
  const char* mlp_norm;           // before the MLP
  const char* post_attn_norm;     // on the attention's output, before the residual add
  const char* post_mlp_norm;      // on the MLP's output, before the residual add
};

inline constexpr Family kFamilies[] = {
    {Arch::Llama, "llama", nullptr, false, false, true, 2048, false, false, Activation::Silu, false, 0.0f,
     "post_attention_layernorm", nullptr, nullptr},
    {Arch::Qwen2, "qwen2", nullptr, true, false, false, 32768, false, false, Activation::Silu, false, 0.0f,
     "post_attention_layernorm", nullptr, nullptr},
    {Arch::Qwen3, "qwen3", nullptr, false, true, false, 40960, false, false, Activation::Silu, false, 0.0f,
     "post_attention_layernorm", nullptr, nullptr},
    {Arch::Mistral, "mistral", nullptr, false, false, true, 32768, false, true, Activation::Silu, false, 0.0f,
     "post_attention_layernorm", nullptr, nullptr},
    {Arch::Gemma3, "gemma3", "gemma3_text", false, true, false, 32768, true, true, Activation::GeluTanh, true, 1.0f,
     "pre_feedforward_layernorm", "post_attention_layernorm", "post_feedforward_layernorm"},
};

inline const Family& family(Arch a) { return kFamilies[static_cast<int>(a)]; }
// The family of an HF model_type or GGUF architecture name; nullptr when there is none.
inline const Family* find_family(std::string_view name) {
  for (const Family& f : kFamilies)
    if (name == f.name || (f.hf_name && name == f.hf_name)) return &f;
  return nullptr;
}
inline std::string family_names() {
  std::string s;
  for (const Family& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;       // family(arch).name (HF model_type / GGUF general.architecture)
  std::string name;            // human-readable model name when the file has one
  int64_t vocab_size = 0;      // embedding rows
  int64_t hidden_size = 0;     // C
  int64_t intermediate_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position = 0;
  float rms_eps = 1e-6f;
  float rope_theta = 10000.0f;
  // Per rotated pair i of a head: its frequency theta^(-2i/head_dim) is divided by this (Llama 3's
  // scaled frequencies, llama.cpp's rope_freqs); empty: none. [head_dim / 2]
  std::vector<float> rope_freq_factors;
  bool attention_bias = false;  // q/k/v biases (always for Qwen2)
  int64_t sliding_window = 0;   // a query sees at most this many keys, itself included (Mistral); 0: all
  // Per layer, 1 where sliding_window holds (Gemma 3's local layers) and 0 where a query sees its
  // whole document; empty: sliding_window holds in every layer.
  std::vector<uint8_t> local_layers;
  float rope_local_theta = 0.0f;  // the RoPE base of the local layers (Gemma 3); 0: rope_theta
  float attn_scale = 0.0f;        // softmax(q·k·attn_scale); 0: 1/√head_dim
  bool tie_embeddings = false;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
};

// q/k/v biases: always for some families, else when the config says so.
inline bool has_qkv_bias(const ModelConfig& c) { return family(c.arch).qkv_bias || c.attention_bias; }

// Whether sliding_window holds in layer l, and the layer's RoPE base.
inline bool is_local_layer(const ModelConfig& c, int64_t l) {
  return c.sliding_window > 0 && (c.local_layers.empty() || c.local_layers[static_cast<size_t>(l)] != 0);
}
inline float layer_rope_theta(const ModelConfig& c, int64_t l) {
  return c.rope_local_theta > 0.0f && is_local_layer(c, l) ? c.rope_local_theta : c.rope_theta;
}
// The factor the embedding's rows are multiplied by.
inline float embed_scale(const ModelConfig& c) {
  return family(c.arch).embed_scaled ? std::sqrt(static_cast<float>(c.hidden_size)) : 1.0f;
}

}  // namespace arwkv
