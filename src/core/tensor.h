// Tensors are non-owning views: a pointer, a dtype, a device and a row-major contiguous shape.
// Storage is owned elsewhere (a Buffer from a backend, an mmap, an arena). Dimension letters used
// across the project: B batch, T time, C channels, H heads, N head size, L layers, V vocabulary.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace arwkv {

// Element types. Besides the scalar types, a weight may be compact: bf16/f16, or ggml's quantisation
// blocks kept exactly as a GGUF file stores them (FORMATS.md §2). A block type packs
// dtype_block(t) consecutive elements of a row into dtype_block_bytes(t) bytes, so a row's length
// must be a multiple of the block; rows follow each other without padding.
enum class DType : uint8_t { F32, F16, BF16, I32, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);            // bytes per element; the scalar types only (not the block types)
int64_t dtype_block(DType t);          // elements per block: 1 for scalars, 32 or 256 for the block types
size_t dtype_block_bytes(DType t);     // bytes per block
size_t dtype_row_bytes(DType t, int64_t n);  // bytes of a row of n elements (n a multiple of the block)
bool dtype_is_block(DType t);          // one of the quantisation block types
const char* dtype_name(DType t);       // "f32", "bf16", "q4_k", ...

constexpr int kMaxDims = 4;

struct Shape {
  std::array<int64_t, kMaxDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);
  static Shape from(const std::vector<int64_t>& d);
  int64_t operator[](int i) const { return dims[static_cast<size_t>(i)]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  std::string str() const;  // "[2, 3]"
};

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  int64_t numel() const { return shape.numel(); }
  size_t nbytes() const { return static_cast<size_t>(rows()) * dtype_row_bytes(dtype, cols()); }
  int64_t dim(int i) const { return shape[i]; }
  int64_t rows() const;  // product of all dims but the last
  int64_t cols() const { return shape.ndim ? shape[shape.ndim - 1] : 1; }

  float* f32() const;          // checked: CPU, F32
  int32_t* i32() const;        // checked: CPU, I32
  Tensor reshape(Shape s) const;
  Tensor slice_rows(int64_t begin, int64_t end) const;  // rows along dim 0
};

// Owning host or device memory; the backend that made it frees it.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* p, size_t n, Device dev, void (*release)(void*));
  Buffer(Buffer&&) noexcept;
  Buffer& operator=(Buffer&&) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
  Device device_ = Device::CPU;
  void (*release_)(void*) = nullptr;
};

// A host fp32 tensor that owns its storage: what loaders hand out and tests build.
struct HostTensor {
  std::vector<float> values;
  Shape shape;

  HostTensor() = default;
  HostTensor(Shape s) : values(static_cast<size_t>(s.numel())), shape(s) {}
  Tensor view() { return Tensor{values.data(), shape, DType::F32, Device::CPU}; }
  Tensor view() const { return Tensor{const_cast<float*>(values.data()), shape, DType::F32, Device::CPU}; }
};

}  // namespace arwkv
