// GGUF reader: metadata getters, value builders and tensor access/dequantisation.
#include <omp.h>

#include "core/error.h"
#include "formats/gguf.h"

namespace arwkv {

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : "?";
}

bool gguf_type_is_integer(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

size_t GgufValue::array_size() const {
  if (type != GgufType::Array) return 0;
  if (elem_type == GgufType::String) return strings.size();
  if (elem_type == GgufType::F32 || elem_type == GgufType::F64) return floats.size();
  return ints.size();
}

GgufValue GgufValue::integer(GgufType t, int64_t v) {
  ARWKV_ASSERT(gguf_type_is_integer(t), "GgufValue::integer of {}", gguf_type_name(t));
  GgufValue g;
  g.type = t;
  g.int_value = v;
  return g;
}
GgufValue GgufValue::f32(float v) {
  GgufValue g;
  g.type = GgufType::F32;
  g.float_value = v;
  return g;
}
GgufValue GgufValue::f64(double v) {
  GgufValue g;
  g.type = GgufType::F64;
  g.float_value = v;
  return g;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue g;
  g.type = GgufType::Bool;
  g.int_value = v ? 1 : 0;
  return g;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue g;
  g.type = GgufType::String;
  g.string_value = std::move(v);
  return g;
}
GgufValue GgufValue::int_array(GgufType elem, std::vector<int64_t> v) {
  ARWKV_ASSERT(gguf_type_is_integer(elem) || elem == GgufType::Bool, "int_array of {}", gguf_type_name(elem));
  GgufValue g;
  g.type = GgufType::Array;
  g.elem_type = elem;
  g.ints = std::move(v);
  return g;
}
GgufValue GgufValue::float_array(GgufType elem, std::vector<double> v) {
  ARWKV_ASSERT(elem == GgufType::F32 || elem == GgufType::F64, "float_array of {}", gguf_type_name(elem));
  GgufValue g;
  g.type = GgufType::Array;
  g.elem_type = elem;
  g.floats = std::move(v);
  return g;
}
GgufValue GgufValue::string_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::Array;
  g.elem_type = GgufType::String;
  g.strings = std::move(v);
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::require(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: missing metadata key '{}'", path(), key);
  return *v;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v, const char* want) {
  if (v.type == GgufType::Array)
    fail("{}: metadata key '{}' is an ARRAY of {}, expected {}", path, key, gguf_type_name(v.elem_type), want);
  fail("{}: metadata key '{}' has type {}, expected {}", path, key, gguf_type_name(v.type), want);
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::String) wrong_type(path(), key, v, "STRING");
  return v.string_value;
}
std::string GgufFile::get_string_or(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = require(key);
  if (!gguf_type_is_integer(v.type)) wrong_type(path(), key, v, "an integer");
  return v.int_value;
}
int64_t GgufFile::get_int_or(const std::string& key, int64_t def) const { return has(key) ? get_int(key) : def; }

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::F32 && v.type != GgufType::F64) wrong_type(path(), key, v, "FLOAT32 or FLOAT64");
  return v.float_value;
}
double GgufFile::get_float_or(const std::string& key, double def) const { return has(key) ? get_float(key) : def; }

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::Bool) wrong_type(path(), key, v, "BOOL");
  return v.int_value != 0;
}
bool GgufFile::get_bool_or(const std::string& key, bool def) const { return has(key) ? get_bool(key) : def; }

const std::vector<std::string>& GgufFile::string_array(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::Array || v.elem_type != GgufType::String) wrong_type(path(), key, v, "an ARRAY of STRING");
  return v.strings;
}
std::vector<std::string> GgufFile::get_string_array(const std::string& key) const { return string_array(key); }

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::Array || !(gguf_type_is_integer(v.elem_type) || v.elem_type == GgufType::Bool))
    wrong_type(path(), key, v, "an ARRAY of integers");
  return v.ints;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::Array || (v.elem_type != GgufType::F32 && v.elem_type != GgufType::F64))
    wrong_type(path(), key, v, "an ARRAY of FLOAT32 or FLOAT64");
  return v.floats;
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

Shape GgufTensorInfo::shape() const {
  Shape s;
  for (size_t i = ne.size(); i-- > 0;) s.dims[static_cast<size_t>(s.ndim++)] = ne[i];
  return s;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail("{}: no tensor named '{}'", path(), name);
  return *t;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return file_.data() + data_offset_ + info.offset;
}

void GgufFile::dequantize_rows(const GgufTensorInfo& info, int64_t row_begin, int64_t row_end, float* dst) const {
  ARWKV_ASSERT(0 <= row_begin && row_begin <= row_end && row_end <= info.n_rows(), "rows [{}, {}) of {} in {}",
               row_begin, row_end, info.n_rows(), info.name);
  const int64_t n = info.row_size();
  const size_t row_bytes = ggml_row_size(info.type, n);
  const uint8_t* src = tensor_data(info);
  const int64_t rows = row_end - row_begin;
#pragma omp parallel for schedule(static) if (rows * n >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(info.type, src + static_cast<size_t>(row_begin + r) * row_bytes, dst + r * n, n);
}

HostTensor GgufFile::dequantize(const GgufTensorInfo& info) const {
  HostTensor t(info.shape());
  dequantize_rows(info, 0, info.n_rows(), t.values.data());
  return t;
}

}  // namespace arwkv
