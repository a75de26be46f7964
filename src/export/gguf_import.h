// Reading an arwkv7 GGUF (ours or llama.cpp's converter's) back as a student: the StudentConfig and
// every tensor of student_tensor_list(config) in HF layout (the inverse of arwkv7_names.h), plus the
// tokenizer from the GGUF metadata. Lets `arwkv` run or re-export such a file.
//
// What the GGUF does not say is filled in: the teacher architecture is "llama" with C/64 heads of 64
// (unused by a pure time-mix student); max_position_embeddings = arwkv7.context_length; tied
// embeddings when output.weight has the same type and bytes as token_embd.weight; has_gate from the
// planes of time_mix_lerp_fused (6) and gate_lora_rank; group norm from time_mix_ln.{weight,bias};
// LoRA ranks from the keys (checked against the tensors).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "export/arwkv7_names.h"
#include "model/student/student_config.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv {

class GgufFile;

class Arwkv7Gguf {
 public:
  // Throws arwkv::Error naming the file for another architecture, a missing key or tensor, or a
  // tensor whose shape disagrees with the keys.
  static std::unique_ptr<Arwkv7Gguf> open(const std::string& path);
  ~Arwkv7Gguf();

  const std::string& path() const;
  const StudentConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  // fp32 in HF layout, for each name of student_tensor_list(config()).
  HostTensor load(const std::string& hf_name) const;
  TokenizerData tokenizer() const;  // throws when the file has no tokenizer metadata

 private:
  Arwkv7Gguf() = default;

  std::unique_ptr<GgufFile> file_;
  StudentConfig config_;
  std::map<std::string, Arwkv7Tensor> by_hf_name_;  // HF name → the GGUF tensor holding it
  std::map<std::string, Shape> hf_shapes_;
};

// True when `path` is a GGUF file whose general.architecture is "arwkv7" (false for anything else,
// including files that cannot be read).
bool is_arwkv7_gguf(const std::string& path);

}  // namespace arwkv
