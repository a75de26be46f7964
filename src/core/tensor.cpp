#include "core/tensor.h"

#include <utility>

namespace arwkv {

namespace {

struct DTypeInfo {
  const char* name;
  int64_t block;       // elements per block
  size_t block_bytes;  // bytes per block
};

DTypeInfo info(DType t) {
  switch (t) {
    case DType::F32: return {"f32", 1, 4};
    case DType::F16: return {"f16", 1, 2};
    case DType::BF16: return {"bf16", 1, 2};
    case DType::I32: return {"i32", 1, 4};
    case DType::Q4_0: return {"q4_0", 32, 18};
    case DType::Q4_1: return {"q4_1", 32, 20};
    case DType::Q5_0: return {"q5_0", 32, 22};
    case DType::Q5_1: return {"q5_1", 32, 24};
    case DType::Q8_0: return {"q8_0", 32, 34};
    case DType::Q4_K: return {"q4_k", 256, 144};
    case DType::Q5_K: return {"q5_k", 256, 176};
    case DType::Q6_K: return {"q6_k", 256, 210};
  }
  return {"?", 1, 0};
}

}  // namespace

size_t dtype_size(DType t) {
  ARWKV_ASSERT(!dtype_is_block(t), "dtype_size of the block type {}", dtype_name(t));
  return info(t).block_bytes;
}

int64_t dtype_block(DType t) { return info(t).block; }
size_t dtype_block_bytes(DType t) { return info(t).block_bytes; }
bool dtype_is_block(DType t) { return info(t).block > 1; }
const char* dtype_name(DType t) { return info(t).name; }

size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo i = info(t);
  ARWKV_ASSERT(n % i.block == 0, "a row of {} elements of {} (blocks of {})", n, i.name, i.block);
  return static_cast<size_t>(n / i.block) * i.block_bytes;
}

Shape::Shape(std::initializer_list<int64_t> d) {
  ARWKV_ASSERT(d.size() <= kMaxDims, "too many dims: {}", d.size());
  for (int64_t v : d) dims[static_cast<size_t>(ndim++)] = v;
}

Shape Shape::from(const std::vector<int64_t>& d) {
  ARWKV_ASSERT(d.size() <= kMaxDims, "too many dims: {}", d.size());
  Shape s;
  for (int64_t v : d) s.dims[static_cast<size_t>(s.ndim++)] = v;
  return s;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= dims[static_cast<size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(dims[static_cast<size_t>(i)]);
  return s + "]";
}

int64_t Tensor::rows() const {
  int64_t r = 1;
  for (int i = 0; i + 1 < shape.ndim; ++i) r *= shape[i];
  return r;
}

float* Tensor::f32() const {
  ARWKV_ASSERT(dtype == DType::F32 && device == Device::CPU, "expected a CPU f32 tensor, got {}",
               dtype_name(dtype));
  return static_cast<float*>(data);
}

int32_t* Tensor::i32() const {
  ARWKV_ASSERT(dtype == DType::I32 && device == Device::CPU, "expected a CPU i32 tensor, got {}",
               dtype_name(dtype));
  return static_cast<int32_t*>(data);
}

Tensor Tensor::reshape(Shape s) const {
  ARWKV_ASSERT(s.numel() == numel(), "reshape {} -> {}", shape.str(), s.str());
  Tensor t = *this;
  t.shape = s;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  ARWKV_ASSERT(shape.ndim >= 1 && 0 <= begin && begin <= end && end <= shape[0], "slice {}..{} of {}",
               begin, end, shape.str());
  const size_t row_bytes = shape[0] ? nbytes() / static_cast<size_t>(shape[0]) : 0;
  Tensor t = *this;
  t.data = static_cast<char*>(data) + static_cast<size_t>(begin) * row_bytes;
  t.shape.dims[0] = end - begin;
  return t;
}

Buffer::Buffer(void* p, size_t n, Device dev, void (*release)(void*))
    : ptr_(p), size_(n), device_(dev), release_(release) {}

Buffer::Buffer(Buffer&& o) noexcept { *this = std::move(o); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    if (ptr_ && release_) release_(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
    device_ = o.device_;
    release_ = std::exchange(o.release_, nullptr);
  }
  return *this;
}

Buffer::~Buffer() {
  if (ptr_ && release_) release_(ptr_);
}

}  // namespace arwkv
