// safetensors writing: JSON header padded with spaces to a multiple of 8, data in insertion order.
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "formats/file_util.h"
#include "formats/safetensors.h"

namespace arwkv {

void SafetensorsWriter::add(const std::string& name, const HostTensor& t, DType stored) {
  add(name, t.values.data(), t.shape, stored);
}

namespace {

const char* stored_name(DType stored) {
  switch (stored) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: ARWKV_ASSERT(false, "safetensors writer cannot store {}", dtype_name(stored));
  }
  return "";
}

size_t stored_size(DType stored) { return stored == DType::F32 ? 4 : 2; }

// n fp32 values as `stored`, little-endian.
void encode(const float* data, size_t n, DType stored, std::vector<uint8_t>& out) {
  out.resize(n * stored_size(stored));
  if (stored == DType::F32) {
    if (n) std::memcpy(out.data(), data, n * 4);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = stored == DType::F16 ? fp32_to_fp16(data[i]) : fp32_to_bf16(data[i]);
    out[2 * i] = static_cast<uint8_t>(h & 0xff);
    out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

}  // namespace

void SafetensorsWriter::check_new(const std::string& name) const {
  ARWKV_ASSERT(!name.empty() && name != "__metadata__", "bad safetensors tensor name '{}'", name);
  for (const Item& it : items_) ARWKV_ASSERT(it.name != name, "duplicate safetensors tensor '{}'", name);
}

void SafetensorsWriter::add(const std::string& name, const float* data, const Shape& shape, DType stored) {
  check_new(name);
  Item item;
  item.name = name;
  item.dtype = stored_name(stored);
  for (int i = 0; i < shape.ndim; ++i) item.shape.push_back(shape[i]);
  encode(data, static_cast<size_t>(shape.numel()), stored, item.bytes);
  item.size = item.bytes.size();
  items_.push_back(std::move(item));
}

void SafetensorsWriter::add_deferred(const std::string& name, const Shape& shape, DType stored,
                                     std::function<HostTensor()> values) {
  check_new(name);
  Item item;
  item.name = name;
  item.dtype = stored_name(stored);
  for (int i = 0; i < shape.ndim; ++i) item.shape.push_back(shape[i]);
  item.size = static_cast<uint64_t>(shape.numel()) * stored_size(stored);
  item.full_shape = shape;
  item.stored = stored;
  item.values = std::move(values);
  items_.push_back(std::move(item));
}

void SafetensorsWriter::add_deferred_bytes(const std::string& name, const Shape& shape, DType stored,
                                           std::function<void(std::vector<uint8_t>&)> bytes) {
  add_deferred(name, shape, stored, {});
  items_.back().encoded = std::move(bytes);
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t at = 0;
  for (const Item& it : items_) {
    header[it.name] = {{"dtype", it.dtype}, {"shape", it.shape}, {"data_offsets", {at, at + it.size}}};
    at += it.size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  write_file_atomically(path, [&](std::FILE* f) {
    write_bytes(f, len, 8, path);
    write_bytes(f, text.data(), text.size(), path);
    std::vector<uint8_t> bytes;
    for (const Item& it : items_) {
      if (it.encoded) {
        it.encoded(bytes);
        if (bytes.size() != it.size)
          fail("{}: tensor '{}' came as {} bytes, expected {}", path, it.name, bytes.size(), it.size);
        write_bytes(f, bytes.data(), bytes.size(), path);
        continue;
      }
      if (!it.values) {
        write_bytes(f, it.bytes.data(), it.bytes.size(), path);
        continue;
      }
      const HostTensor t = it.values();
      if (!(t.shape == it.full_shape))
        fail("{}: tensor '{}' has shape {}, expected {}", path, it.name, t.shape.str(), it.full_shape.str());
      encode(t.values.data(), t.values.size(), it.stored, bytes);
      write_bytes(f, bytes.data(), bytes.size(), path);
    }
  });
}

void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  const nlohmann::json j = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

}  // namespace arwkv
