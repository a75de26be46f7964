// The hyper-parameters of a Llama-family decoder, whatever file they came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace arwkv {

enum class Arch { Llama, Qwen2 };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;       // "llama" or "qwen2" (HF model_type / GGUF general.architecture)
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
  bool attention_bias = false;  // q/k/v biases (Qwen2)
  bool tie_embeddings = false;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
};

}  // namespace arwkv
