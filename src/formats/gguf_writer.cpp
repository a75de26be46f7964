// GGUF v3 writer: encodes metadata and tensor infos into a header buffer, then streams the header,
// its padding and each tensor's bytes (padded) into an atomically renamed file.
#include "formats/gguf_writer.h"

#include <bit>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "formats/file_util.h"

namespace arwkv {
namespace {

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void put_integer(GgufType t, int64_t v) {
    switch (t) {
      case GgufType::U8: case GgufType::I8: case GgufType::Bool: put<uint8_t>(static_cast<uint8_t>(v)); return;
      case GgufType::U16: case GgufType::I16: put<uint16_t>(static_cast<uint16_t>(v)); return;
      case GgufType::U32: case GgufType::I32: put<uint32_t>(static_cast<uint32_t>(v)); return;
      case GgufType::U64: case GgufType::I64: put<uint64_t>(static_cast<uint64_t>(v)); return;
      default: ARWKV_ASSERT(false, "put_integer of {}", gguf_type_name(t));
    }
  }
  void put_float(GgufType t, double v) {
    if (t == GgufType::F32) put<uint32_t>(std::bit_cast<uint32_t>(static_cast<float>(v)));
    else put<uint64_t>(std::bit_cast<uint64_t>(v));
  }
  std::vector<uint8_t> out;
};

void put_value(Bytes& b, const GgufValue& v) {
  b.put<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::String: b.put_string(v.string_value); return;
    case GgufType::F32: case GgufType::F64: b.put_float(v.type, v.float_value); return;
    case GgufType::Array:
      ARWKV_ASSERT(v.elem_type != GgufType::Array, "nested GGUF arrays are not written");
      b.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      b.put<uint64_t>(v.array_size());
      if (v.elem_type == GgufType::String) {
        for (const std::string& s : v.strings) b.put_string(s);
      } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
        for (double x : v.floats) b.put_float(v.elem_type, x);
      } else {
        for (int64_t x : v.ints) b.put_integer(v.elem_type, x);
      }
      return;
    default: b.put_integer(v.type, v.int_value); return;
  }
}

std::vector<uint8_t> encode(const float* x, int64_t n, GgmlType type) {
  std::vector<uint8_t> out;
  switch (type) {
    case GgmlType::F32:
      out.resize(static_cast<size_t>(n) * 4);
      std::memcpy(out.data(), x, out.size());
      break;
    case GgmlType::F16: case GgmlType::BF16:
      out.resize(static_cast<size_t>(n) * 2);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == GgmlType::F16 ? fp32_to_fp16(x[i]) : fp32_to_bf16(x[i]);
        out[2 * i] = static_cast<uint8_t>(h & 0xff);
        out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
      }
      break;
    case GgmlType::Q8_0:
      out.resize(static_cast<size_t>(n / 32) * 34);
      quantize_row_q8_0(x, out.data(), n);  // rows are whole blocks, so the tensor is one long row
      break;
    default: ARWKV_ASSERT(false, "GgufWriter cannot encode {}", ggml_type_name(type));
  }
  return out;
}

size_t padding(size_t n, size_t align) { return (align - n % align) % align; }

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  ARWKV_ASSERT(!key.empty(), "empty GGUF key");
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, const float* data, const Shape& shape, GgmlType type) {
  ARWKV_ASSERT(!name.empty() && name.size() < 64, "GGUF tensor name '{}' must be 1..63 bytes", name);
  for (const Entry& e : tensors_) ARWKV_ASSERT(e.name != name, "duplicate GGUF tensor '{}'", name);
  Entry e{name, {}, type, {}};
  for (int i = shape.ndim; i-- > 0;) e.ne.push_back(shape[i]);
  if (e.ne.empty()) e.ne.push_back(1);
  const int64_t row = e.ne[0];
  if (type == GgmlType::Q8_0 && row % 32 != 0)
    fail("GGUF tensor '{}': Q8_0 needs rows of a multiple of 32 elements, got {}", name, row);
  e.bytes = encode(data, shape.numel(), type);
  tensors_.push_back(std::move(e));
}

void GgufWriter::write(const std::string& path) const {
  Bytes h;
  h.out = {'G', 'G', 'U', 'F'};
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    h.put_string(k);
    put_value(h, v);
  }
  uint64_t offset = 0;
  for (const Entry& e : tensors_) {
    h.put_string(e.name);
    h.put<uint32_t>(static_cast<uint32_t>(e.ne.size()));
    for (int64_t d : e.ne) h.put<uint64_t>(static_cast<uint64_t>(d));
    h.put<uint32_t>(static_cast<uint32_t>(e.type));
    h.put<uint64_t>(offset);
    offset += e.bytes.size() + padding(e.bytes.size(), kAlignment);
  }
  h.out.resize(h.out.size() + padding(h.out.size(), kAlignment), 0);
  write_file_atomically(path, [&](std::FILE* f) {
    static const uint8_t zeros[kAlignment] = {};
    write_bytes(f, h.out.data(), h.out.size(), path);
    for (const Entry& e : tensors_) {
      write_bytes(f, e.bytes.data(), e.bytes.size(), path);
      write_bytes(f, zeros, padding(e.bytes.size(), kAlignment), path);
    }
  });
}

}  // namespace arwkv
