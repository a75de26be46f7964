// The activation on the gate of a gated MLP, named by the model family (model/config.h) and
// computed by the ops (backend/ops.h).
#pragma once

namespace arwkv {

// SiLU (Llama, Qwen, Mistral) or GELU in its tanh approximation,
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (Gemma's gelu_pytorch_tanh).
enum class Activation { Silu, GeluTanh };
inline constexpr double kGeluK0 = 0.79788456080286536;  // √(2/π)
inline constexpr double kGeluK1 = 0.044715;

}  // namespace arwkv
