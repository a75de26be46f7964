// Every tensor a decoder of one of the families (model/config.h) has, under its HF name and
// (PyTorch) shape: formats/hf_config.h's teacher_tensor_list, with the head marked optional.
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

// Embedding, per layer (norms, attention with its biases and q/k norms where the family has them,
// SwiGLU MLP), final norm, head (lm_head.weight, not required: a tied model has none).
std::vector<TensorSpec> teacher_tensors(const ModelConfig& cfg);

// "model.layers.{layer}.{suffix}"
std::string layer_tensor_name(int64_t layer, const std::string& suffix);

}  // namespace arwkv
