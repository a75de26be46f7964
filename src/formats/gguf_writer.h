// GGUF v3 writer (layout in gguf.h). Metadata of every type, tensors stored as F32, F16, BF16 or
// Q8_0 (reference quantiser), alignment 32, tensor data contiguous in info order with each tensor
// padded to the alignment — the layout ggml/llama.cpp demand (FORMATS.md §1.4). The file is
// written to a temporary name and renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/gguf.h"

namespace arwkv {

class GgufWriter {
 public:
  // Sets or replaces a key; keys are written in the order first set.
  void set(const std::string& key, GgufValue value);
  // Adds a tensor given in row-major (PyTorch) shape; it is stored with ne = shape reversed.
  // Types: F32, F16, BF16, Q8_0 (the last dimension must then be a multiple of 32).
  void add_tensor(const std::string& name, const float* data, const Shape& shape, GgmlType type);
  void add_tensor(const std::string& name, const HostTensor& t, GgmlType type) {
    add_tensor(name, t.values.data(), t.shape, type);
  }
  void write(const std::string& path) const;

  static constexpr size_t kAlignment = 32;

 private:
  struct Entry {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    std::vector<uint8_t> bytes;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Entry> tensors_;
};

}  // namespace arwkv
