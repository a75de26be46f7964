// GGUF reader (versions 2 and 3, little-endian), FORMATS.md §1.
//
// Layout: magic "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count records of
// (string key, u32 value type, value); tensor_count records of (string name, u32 n_dims,
// n_dims × u64 ne, u32 ggml type, u64 offset); zero padding to `general.alignment` (default 32);
// then the data section, tensor offsets being relative to its start. Strings are a u64 byte length
// followed by the bytes. Arrays are u32 element type, u64 count, elements. ne[0] is contiguous, so
// the row-major (PyTorch) shape is ne reversed.
//
// The file is memory-mapped and fully validated at open: every problem throws arwkv::Error naming
// the file and what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "core/tensor.h"
#include "formats/quant.h"

namespace arwkv {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

const char* gguf_type_name(GgufType t);  // "UINT32", ...
bool gguf_type_is_integer(GgufType t);   // the eight integer types (not bool)

// One metadata value. Scalars use the field of their kind; an array has type Array, its element
// type in elem_type and its elements in the vector of their kind. Integers of every width and
// bools are held as int64 (a UINT64 above INT64_MAX is rejected at open); F32/F64 as double.
struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elem_type = GgufType::U8;  // arrays only
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string string_value;
  std::vector<int64_t> ints;          // array of an integer type or of bools
  std::vector<double> floats;         // array of F32 / F64
  std::vector<std::string> strings;   // array of strings

  size_t array_size() const;

  // Builders, for the writer and tests.
  static GgufValue integer(GgufType t, int64_t v);
  static GgufValue u32(uint32_t v) { return integer(GgufType::U32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::I32, v); }
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue int_array(GgufType elem, std::vector<int64_t> v);
  static GgufValue float_array(GgufType elem, std::vector<double> v);
  static GgufValue string_array(std::vector<std::string> v);
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // GGUF order: ne[0] is the contiguous dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;      // bytes from the start of the data section
  uint64_t nbytes = 0;

  int64_t numel() const;
  Shape shape() const;      // row-major (PyTorch) shape: ne reversed
  int64_t row_size() const { return ne.empty() ? 1 : ne[0]; }  // elements per row
  int64_t n_rows() const { return row_size() ? numel() / row_size() : 0; }
};

class GgufFile {
 public:
  static std::unique_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // file position of the data section

  // Metadata. find returns null for a missing key; the throwing getters name the file and key
  // when it is missing or of the wrong type. get_int accepts any integer type, get_float F32 or
  // F64, get_int_array any integer or bool element type, get_float_array F32/F64 elements.
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<std::string>& keys() const { return key_order_; }  // in file order
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& def) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;
  double get_float_or(const std::string& key, double def) const;
  bool get_bool(const std::string& key) const;
  bool get_bool_or(const std::string& key, bool def) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  const std::vector<std::string>& string_array(const std::string& key) const;  // no copy
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;

  // Tensors, in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming file + tensor
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;
  // Drops the tensor's mapped pages from the process once its data has been copied out.
  void drop_pages(const GgufTensorInfo& info) const { file_.drop_pages(tensor_data(info), info.nbytes); }

  // fp32 copy in row-major shape info.shape(); rows [row_begin, row_end) only for dequantize_rows
  // (a row = ne[0] elements), written to dst.
  HostTensor dequantize(const GgufTensorInfo& info) const;
  void dequantize_rows(const GgufTensorInfo& info, int64_t row_begin, int64_t row_end, float* dst) const;

 private:
  explicit GgufFile(MmapFile file) : file_(std::move(file)) {}
  void parse();
  const GgufValue& require(const std::string& key) const;

  MmapFile file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> key_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace arwkv
