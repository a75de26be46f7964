// A student checkpoint directory on disk (SPEC §5): config.json ("model_type": "rwkv_hybrid") and
// model.safetensors or model.safetensors.index.json + shards, with tokenizer.json alongside. Read
// through SafetensorsSet directly (Checkpoint::open knows only teacher configs); the tensor set must
// be exactly student_tensor_list(config) (a tied checkpoint may also carry lm_head.weight).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

class SafetensorsSet;

class StudentCheckpoint {
 public:
  // `path`: the directory, or its .safetensors / .safetensors.index.json file. Throws arwkv::Error
  // naming the file for a missing or malformed config, a missing, misshapen or unexpected tensor.
  static std::unique_ptr<StudentCheckpoint> open(const std::string& path);
  // A checkpoint whose tensors (every name of student_tensor_list(config), fp32, HF layout) come
  // from another reader, such as an arwkv7 GGUF.
  static std::unique_ptr<StudentCheckpoint> from_loader(std::string path, StudentConfig config,
                                                        std::function<HostTensor(const std::string&)> load);
  ~StudentCheckpoint();

  const std::string& path() const { return path_; }
  const StudentConfig& config() const { return config_; }
  bool has(const std::string& name) const;
  HostTensor load(const std::string& name) const;  // fp32, whatever the stored dtype
  // F16 or BF16 when the file stores the tensor so, else F32 (also for other loaders).
  DType stored_dtype(const std::string& name) const;
  std::string tokenizer_json_path() const { return tokenizer_; }  // empty when absent

 private:
  StudentCheckpoint() = default;

  std::string path_, tokenizer_;
  StudentConfig config_;
  std::unique_ptr<SafetensorsSet> set_;
  std::function<HostTensor(const std::string&)> loader_;
};

// True when `path` is a student checkpoint directory (or a file in one): its config.json says
// rwkv_hybrid. Lets callers choose between Checkpoint::open and StudentCheckpoint::open.
bool is_student_checkpoint(const std::string& path);

// Writes config.json and model.safetensors into `dir` (created if needed), taking each tensor of
// student_tensor_list(config) from `get` (called once per tensor while the file is written, so
// that only one tensor is held at a time), stored as `stored`, or as stored_of(spec) when given;
// half_bytes, when given, makes the stored bytes of every tensor stored as F16 or BF16 itself
// (for tensors already held in that dtype: no fp32 copy on the way). A wrong shape throws.
void write_student_checkpoint(const std::string& dir, const StudentConfig& config,
                              const std::function<HostTensor(const TensorSpec&)>& get,
                              DType stored = DType::F32,
                              const std::function<DType(const TensorSpec&)>& stored_of = {},
                              const std::function<void(const TensorSpec&, std::vector<uint8_t>&)>& half_bytes = {});

}  // namespace arwkv
