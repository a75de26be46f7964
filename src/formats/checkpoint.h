// A model checkpoint on disk, whatever its format: an HF directory (config.json, one or sharded
// safetensors, tokenizer.json), a single .safetensors file next to its config.json, or a GGUF file.
// Tensors are always presented under HF names and in HF layout (a llama-arch GGUF's permuted q/k
// rows are put back), converted or dequantized to fp32 on load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace arwkv {

class GgufFile;

struct TensorInfo {
  std::string name;        // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;             // HF (PyTorch) shape
  std::string file_dtype;  // as stored: "BF16", "F32", "Q4_1", ...
};

class Checkpoint {
 public:
  virtual ~Checkpoint() = default;
  // Throws arwkv::Error naming the file and the problem for anything malformed or unsupported.
  static std::unique_ptr<Checkpoint> open(const std::string& path);

  virtual const std::string& path() const = 0;
  virtual std::string format() const = 0;  // "gguf" or "safetensors"
  virtual const ModelConfig& config() const = 0;
  virtual const std::vector<TensorInfo>& tensors() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual HostTensor load(const std::string& name) const = 0;
  // Compact weights: the dtype a tensor can be kept in as stored (F16, BF16 or a GGUF quantisation
  // block type; F32 when it is stored otherwise or has no compact form), and its bytes in that dtype
  // and in HF layout (as load() presents it) written to dst, dtype_row_bytes × rows bytes.
  virtual DType stored_dtype(const std::string& name) const { return DType::F32; }
  virtual void load_stored(const std::string& name, void* dst) const;
  // The GGUF file behind this checkpoint (tokenizer metadata, raw tensors), or null.
  virtual const GgufFile* gguf() const { return nullptr; }
  // tokenizer.json next to a safetensors checkpoint, or empty.
  virtual std::string tokenizer_json_path() const { return {}; }
};

}  // namespace arwkv
