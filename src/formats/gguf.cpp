// GGUF reader: parsing and validation of the header, metadata and tensor infos (layout in gguf.h).
#include "formats/gguf.h"

#include <limits>
#include <utility>

#include "core/error.h"

namespace arwkv {
namespace {

constexpr uint64_t kMaxDimsGguf = 4;

// A bounds-checked little-endian reader over the mapped bytes; every overrun names the file and
// what was being read.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > left()) fail("{}: truncated: {} needs {} bytes at offset {}, file has {}", path_, what, n, pos_, size_);
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v{};
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(data_[pos_ + i]) << (8 * i));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  const std::string& path() const { return path_; }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

int64_t read_integer(Cursor& c, GgufType t, const std::string& key) {
  switch (t) {
    case GgufType::U8: return c.read<uint8_t>("a UINT8 value");
    case GgufType::I8: return static_cast<int8_t>(c.read<uint8_t>("an INT8 value"));
    case GgufType::U16: return c.read<uint16_t>("a UINT16 value");
    case GgufType::I16: return static_cast<int16_t>(c.read<uint16_t>("an INT16 value"));
    case GgufType::U32: return c.read<uint32_t>("a UINT32 value");
    case GgufType::I32: return static_cast<int32_t>(c.read<uint32_t>("an INT32 value"));
    case GgufType::I64: return static_cast<int64_t>(c.read<uint64_t>("an INT64 value"));
    case GgufType::U64: {
      const uint64_t v = c.read<uint64_t>("a UINT64 value");
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: key '{}': UINT64 value {} is too large", c.path(), key, v);
      return static_cast<int64_t>(v);
    }
    case GgufType::Bool: {
      const uint8_t b = c.read<uint8_t>("a BOOL value");
      if (b > 1) fail("{}: key '{}': BOOL value {} is neither 0 nor 1", c.path(), key, b);
      return b;
    }
    default: break;
  }
  ARWKV_ASSERT(false, "read_integer of type {}", static_cast<uint32_t>(t));
}

double read_floating(Cursor& c, GgufType t) {
  if (t == GgufType::F32) return std::bit_cast<float>(c.read<uint32_t>("a FLOAT32 value"));
  return std::bit_cast<double>(c.read<uint64_t>("a FLOAT64 value"));
}

GgufType read_type(Cursor& c, const std::string& key, const char* what) {
  const uint32_t t = c.read<uint32_t>(what);
  if (t > static_cast<uint32_t>(GgufType::F64)) fail("{}: key '{}': unknown value type {}", c.path(), key, t);
  return static_cast<GgufType>(t);
}

// Minimum bytes one element of type t occupies, to reject counts that cannot fit before reading.
uint64_t min_element_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::String: case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

void read_array(Cursor& c, GgufValue& v, const std::string& key) {
  v.elem_type = read_type(c, key, "an array element type");
  if (v.elem_type == GgufType::Array) fail("{}: key '{}': arrays of arrays are not supported", c.path(), key);
  const uint64_t n = c.read<uint64_t>("an array length");
  if (n > c.left() / min_element_size(v.elem_type))
    fail("{}: key '{}': array of {} elements runs past the end of the file", c.path(), key, n);
  const size_t count = static_cast<size_t>(n);
  if (v.elem_type == GgufType::String) {
    v.strings.reserve(count);
    for (size_t i = 0; i < count; ++i) v.strings.push_back(c.read_string("an array string"));
  } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
    v.floats.reserve(count);
    for (size_t i = 0; i < count; ++i) v.floats.push_back(read_floating(c, v.elem_type));
  } else {
    v.ints.reserve(count);
    for (size_t i = 0; i < count; ++i) v.ints.push_back(read_integer(c, v.elem_type, key));
  }
}

GgufValue read_value(Cursor& c, const std::string& key) {
  GgufValue v;
  v.type = read_type(c, key, "a value type");
  if (v.type == GgufType::String) v.string_value = c.read_string("a string value");
  else if (v.type == GgufType::Array) read_array(c, v, key);
  else if (v.type == GgufType::F32 || v.type == GgufType::F64) v.float_value = read_floating(c, v.type);
  else v.int_value = read_integer(c, v.type, key);
  return v;
}

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile(MmapFile(path)));
  f->parse();
  return f;
}

void GgufFile::parse() {
  const std::string& p = path();
  Cursor c(p, file_.data(), file_.size());
  if (file_.size() < 4 || std::string(reinterpret_cast<const char*>(file_.data()), 4) != "GGUF")
    fail("{}: not a GGUF file (bad magic)", p);
  c.read<uint32_t>("the magic");
  version_ = c.read<uint32_t>("the version");
  if ((version_ & 0xffff) == 0 && version_ != 0) fail("{}: big-endian GGUF files are not supported", p);
  if (version_ != 2 && version_ != 3) fail("{}: unsupported GGUF version {} (expected 2 or 3)", p, version_);
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // A kv record takes at least 8 + 4 + 1 bytes and a tensor info at least 8 + 4 + 4 + 8.
  if (n_kv > c.left() / 13) fail("{}: metadata count {} exceeds what the file can hold", p, n_kv);
  if (n_tensors > c.left() / 24) fail("{}: tensor count {} exceeds what the file can hold", p, n_tensors);

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("a metadata key");
    if (key.empty()) fail("{}: metadata record {} has an empty key", p, i);
    if (kv_.count(key)) fail("{}: duplicate metadata key '{}'", p, key);
    GgufValue v = read_value(c, key);
    key_order_.push_back(key);
    kv_.emplace(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (!gguf_type_is_integer(a->type) || a->int_value <= 0 || (a->int_value & (a->int_value - 1)) != 0)
      fail("{}: general.alignment must be a positive power of two integer", p);
    alignment_ = static_cast<size_t>(a->int_value);
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string("a tensor name");
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims > kMaxDimsGguf) fail("{}: tensor '{}' has {} dims (at most 4)", p, t.name, n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne > (1ull << 40)) fail("{}: tensor '{}' has an implausible dimension {}", p, t.name, ne);
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type = c.read<uint32_t>("a tensor type");
    const GgmlTypeInfo info = ggml_type_info(type);
    if (!info.name) fail("{}: tensor '{}' has unknown ggml type {}", p, t.name, type);
    if (!info.can_dequantize) fail("{}: tensor '{}' has unsupported ggml type {}", p, t.name, info.name);
    t.type = static_cast<GgmlType>(type);
    t.offset = c.read<uint64_t>("a tensor offset");
    if (tensor_index_.count(t.name)) fail("{}: duplicate tensor name '{}'", p, t.name);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  const size_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  for (GgufTensorInfo& t : tensors_) {
    const GgmlTypeInfo info = ggml_type_info(t.type);
    const int64_t ne0 = t.row_size();
    if (ne0 % info.block_size != 0)
      fail("{}: tensor '{}': ne[0] = {} is not a multiple of the {} block size {}", p, t.name, ne0, info.name,
           info.block_size);
    int64_t numel = 1;
    for (int64_t ne : t.ne)
      if (__builtin_mul_overflow(numel, ne, &numel) || static_cast<uint64_t>(numel) > file_.size() * 8ull)
        fail("{}: tensor '{}' has more elements than the file can hold", p, t.name);
    t.nbytes = static_cast<uint64_t>(numel / info.block_size) * info.type_size;
    if (t.offset % alignment_ != 0)
      fail("{}: tensor '{}': offset {} is not a multiple of the alignment {}", p, t.name, t.offset, alignment_);
    if (data_offset_ > file_.size() || t.offset > file_.size() - data_offset_ ||
        t.nbytes > file_.size() - data_offset_ - t.offset)
      fail("{}: tensor '{}': data ({} bytes at offset {}) runs past the end of the file ({} bytes)", p, t.name,
           t.nbytes, data_offset_ + t.offset, file_.size());
  }
}

}  // namespace arwkv
