// The one list of every tensor a Llama/Qwen2 decoder has, under its HF name and (PyTorch) shape.
// Loading walks it; later stages (conversion, export, training) walk the same list.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace arwkv {

struct TensorSpec {
  std::string name;       // HF name
  Shape shape;            // HF shape
  bool required = true;   // false: may be absent (lm_head.weight of a tied model)
};

// Embedding, per layer (norms, attention with Qwen2's q/k/v biases, SwiGLU MLP), final norm, head.
std::vector<TensorSpec> teacher_tensors(const ModelConfig& cfg);

// "model.layers.{layer}.{suffix}"
std::string layer_tensor_name(int64_t layer, const std::string& suffix);

// Qwen2 always has q/k/v biases; Llama when its config says attention_bias.
inline bool has_qkv_bias(const ModelConfig& cfg) { return cfg.arch == Arch::Qwen2 || cfg.attention_bias; }

}  // namespace arwkv
