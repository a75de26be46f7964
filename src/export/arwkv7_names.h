// The llama.cpp `arwkv7` GGUF layout of a student (SPEC §5, FORMATS.md §8): metadata key names and
// the one table that maps each student tensor (HF name, HF shape) to its GGUF tensor, used by the
// exporter and by the reader that loads such a file back. Transforms between the two layouts:
//   - x_r, x_w, x_k, x_v, x_a (, x_g) [1,1,C] are stacked into time_mix_lerp_fused, ne {C,1,1,P}, in
//     that order (plane p = elements [p·C, (p+1)·C));
//   - LoRA matrices w1 w2 a1 a2 v1 v2 g1 g2 are transposed: HF [C, D] (used as x·W) becomes the
//     nn.Linear layout [D, C], ne {C, D}, that llama.cpp multiplies as W·x;
//   - [1,1,C] vectors become ne {C}; r_k [H, N] is flattened to ne {C};
//   - layer 0 carries dummy v0/v1/v2 copied from its a0/a1/a2 (llama.cpp loads but never uses them);
//   - output.weight is always present (a copy of the embedding for a tied student).
// Everything else keeps the bytes of the HF tensor (GGUF ne = HF shape reversed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

inline constexpr const char* kArwkv7Arch = "arwkv7";
inline constexpr int64_t kArwkv7ContextLength = 1048576;  // what llama.cpp's converter writes: no limit

// "arwkv7." + suffix
std::string arwkv7_key(const std::string& suffix);

enum class Arwkv7Transform {
  Copy,        // same bytes; GGUF ne = HF shape reversed
  Vector,      // [1,1,C] or [H,N] → ne {C}
  Transpose,   // LoRA matrix [C, D] → ne {C, D} of the transposed [D, C]
  LerpFused,   // the token-shift mixes of one layer stacked: ne {C,1,1,P}
  DummyVector, // layer 0's v0: a copy of its a0
  DummyMatrix, // layer 0's v1/v2: copies of its a1/a2, transposed
};

struct Arwkv7Tensor {
  std::string gguf_name;               // e.g. "blk.3.time_mix_w1.weight"
  std::vector<std::string> hf_names;   // its source(s): several for lerp_fused
  Shape gguf_shape;                    // row-major shape as written (ne reversed)
  Arwkv7Transform transform = Arwkv7Transform::Copy;
  bool big_matrix = false;             // may be stored as F16 / Q8_0 (embedding, head, r/k/v/o, MLP)
};

// Every tensor of the arwkv7 file for this student, in file order. The student must be pure
// time-mix (check_arwkv7_exportable).
std::vector<Arwkv7Tensor> arwkv7_tensor_list(const StudentConfig& c);

// Throws arwkv::Error naming `source` when llama.cpp's arwkv7 cannot represent the student: layers
// that keep softmax attention. (Group norm is representable: llama.cpp applies GroupNorm with
// H groups and eps 64e-5 before the bonus term when time_mix_ln weight and bias exist — our math.
// The gate g = sigmoid(x_g·g1)·g2 is llama.cpp's too.)
void check_arwkv7_exportable(const StudentConfig& c, const std::string& source);

// The GGUF tensor's row-major data from its HF source tensors (in hf_names order).
HostTensor arwkv7_from_hf(const Arwkv7Tensor& t, const std::vector<HostTensor>& hf);

// The inverse for one HF tensor: hf_name's data taken out of the GGUF tensor `g` that holds it.
HostTensor arwkv7_to_hf(const Arwkv7Tensor& t, const HostTensor& g, const std::string& hf_name, const Shape& hf_shape);

}  // namespace arwkv
