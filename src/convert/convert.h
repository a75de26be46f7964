// `arwkv convert`: a teacher checkpoint (HF directory or GGUF) → a student checkpoint directory
// (SPEC §5): config.json, model.safetensors, and the tokenizer (the teacher's tokenizer files
// copied, or tokenizer.json written from GGUF metadata) with generation_config.json.
//
// Time-mix layers get the init of student_init.h; layers listed in keep_attention keep the
// teacher's attention (with biases) under the teacher's names; every other tensor is copied, and a
// tied head stays tied. The directory is written as DIR.tmp-XXXXXXXX next to DIR and renamed at the
// end, so a failure never leaves a partial DIR.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convert/student_init.h"
#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

class Checkpoint;

struct ConvertOptions {
  std::string teacher;  // HF directory, .safetensors file or GGUF file
  std::string out;      // the student directory
  InitKind init = InitKind::Transfer;
  std::vector<int> keep_attention;        // layers that keep softmax attention
  bool gate = true;
  bool group_norm = false;
  std::optional<LoraRanks> lora_ranks;   // default: the size formula (transfer) or 64/64/32/128 (arwkv)
  uint64_t seed = 0;
  DType dtype = DType::F32;               // stored dtype of the weights: F32, BF16 or F16
  bool force = false;                     // replace an existing non-empty `out`
};

struct ConvertReport {
  std::string out;
  StudentConfig config;
  int64_t n_tensors = 0;
  int64_t n_parameters = 0;
  std::string tokenizer;  // where the tokenizer came from, or why there is none
};

// The student's config for this teacher, after every check a user's options can fail (errors
// name `source`, the teacher file): hidden size a multiple of 64, keep-attention layers in range,
// at least one time-mix layer, LoRA ranks positive, and for transfer n_heads·head_dim == C.
StudentConfig plan_student(const ModelConfig& teacher, const ConvertOptions& o, const std::string& source);

// One tensor of the student: copied from the teacher, transferred, or initialised.
HostTensor make_student_tensor(const Checkpoint& teacher, const StudentConfig& c, InitKind init, uint64_t seed,
                               const std::string& name);

ConvertReport convert_teacher(const ConvertOptions& o);

// "3,17" → {3, 17}; throws arwkv::Error naming `source` and `what` for anything but integers.
std::vector<int> parse_int_list(const std::string& text, const std::string& what, const std::string& source);

}  // namespace arwkv
