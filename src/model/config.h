// The hyper-parameters of a Llama-family decoder, whatever file they came from, and the families
// it may belong to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace arwkv {

enum class Arch { Llama, Qwen2, Qwen3, Mistral };

// What sets one decoder family's layers apart from another's. Loading, the teacher, the student
// and the formats read these fields; no code asks which family it has.
struct Family {
  Arch arch;
  const char* name;               // HF model_type and GGUF general.architecture
  bool qkv_bias;                  // q/k/v projections always have biases (else: the config says)
  bool qk_norm;                   // RMSNorm over each head of q and of k, before RoPE
  bool gguf_rope_permuted;        // llama.cpp's converter permutes q/k rows for its RoPE
  int64_t default_max_position;   // max_position_embeddings when a config leaves it out
  bool sliding_window;            // config.json's sliding_window holds in every layer (else it holds
                                  // nowhere unless use_sliding_window, which is refused)
};

inline constexpr Family kFamilies[] = {
    {Arch::Llama, "llama", false, false, true, 2048, false},
    {Arch::Qwen2, "qwen2", true, false, false, 32768, false},
    {Arch::Qwen3, "qwen3", false, true, false, 40960, false},
    {Arch::Mistral, "mistral", false, false, true, 32768, true},
};

inline const Family& family(Arch a) { return kFamilies[static_cast<int>(a)]; }
// The family of an HF model_type or GGUF architecture name; nullptr when there is none.
inline const Family* find_family(std::string_view name) {
  for (const Family& f : kFamilies)
    if (name == f.name) return &f;
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
  bool tie_embeddings = false;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
};

// q/k/v biases: always for some families, else when the config says so.
inline bool has_qkv_bias(const ModelConfig& c) { return family(c.arch).qkv_bias || c.attention_bias; }

}  // namespace arwkv
