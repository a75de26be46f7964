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

void SafetensorsWriter::add(const std::string& name, const float* data, const Shape& shape, DType stored) {
  ARWKV_ASSERT(!name.empty() && name != "__metadata__", "bad safetensors tensor name '{}'", name);
  for (const Item& it : items_) ARWKV_ASSERT(it.name != name, "duplicate safetensors tensor '{}'", name);
  Item item{name, {}, {}, {}};
  for (int i = 0; i < shape.ndim; ++i) item.shape.push_back(shape[i]);
  const size_t n = static_cast<size_t>(shape.numel());
  switch (stored) {
    case DType::F32:
      item.dtype = "F32";
      item.bytes.resize(n * 4);
      if (n) std::memcpy(item.bytes.data(), data, n * 4);
      break;
    case DType::F16: case DType::BF16:
      item.dtype = stored == DType::F16 ? "F16" : "BF16";
      item.bytes.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = stored == DType::F16 ? fp32_to_fp16(data[i]) : fp32_to_bf16(data[i]);
        item.bytes[2 * i] = static_cast<uint8_t>(h & 0xff);
        item.bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
      }
      break;
    default: ARWKV_ASSERT(false, "safetensors writer cannot store {}", dtype_name(stored));
  }
  items_.push_back(std::move(item));
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t at = 0;
  for (const Item& it : items_) {
    header[it.name] = {{"dtype", it.dtype}, {"shape", it.shape}, {"data_offsets", {at, at + it.bytes.size()}}};
    at += it.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  write_file_atomically(path, [&](std::FILE* f) {
    write_bytes(f, len, 8, path);
    write_bytes(f, text.data(), text.size(), path);
    for (const Item& it : items_) write_bytes(f, it.bytes.data(), it.bytes.size(), path);
  });
}

void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  const nlohmann::json j = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

}  // namespace arwkv
