// safetensors reading: header parsing and validation, dtype conversion, sharded sets.
#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"

namespace arwkv {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;

// Bytes per element of each dtype the format defines (sub-byte types rounded: F4/F6 are refused).
int dtype_bytes(const std::string& d) {
  static const std::map<std::string, int> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1}, {"F8_E4M3FNUZ", 1},
      {"F8_E5M2FNUZ", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4},
      {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}, {"C64", 8}};
  const auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  SafetensorsEntry e;
  e.name = name;
  if (!j.is_object()) fail("{}: header entry '{}' is not an object", path, name);
  const auto dt = j.find("dtype");
  const auto sh = j.find("shape");
  const auto off = j.find("data_offsets");
  if (dt == j.end() || !dt->is_string()) fail("{}: tensor '{}' has no dtype string", path, name);
  if (sh == j.end() || !sh->is_array()) fail("{}: tensor '{}' has no shape array", path, name);
  if (off == j.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail("{}: tensor '{}' needs data_offsets [begin, end] of unsigned integers", path, name);
  e.dtype = dt->get<std::string>();
  if (dtype_bytes(e.dtype) == 0) fail("{}: tensor '{}' has unknown or unsupported dtype '{}'", path, name, e.dtype);
  if (sh->size() > 8) fail("{}: tensor '{}' has {} dims", path, name, sh->size());
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40))
      fail("{}: tensor '{}' has an invalid shape entry {}", path, name, d.dump());
    e.shape.push_back(d.get<int64_t>());
  }
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  if (e.end < e.begin) fail("{}: tensor '{}' has data_offsets [{}, {}] with end before begin", path, name, e.begin, e.end);
  int64_t n = 1;
  for (int64_t d : e.shape)
    if (__builtin_mul_overflow(n, d, &n)) fail("{}: tensor '{}' shape overflows", path, name);
  if (static_cast<uint64_t>(n) > (1ull << 48) ||
      static_cast<uint64_t>(n) * static_cast<uint64_t>(dtype_bytes(e.dtype)) != e.end - e.begin)
    fail("{}: tensor '{}': {} bytes of data do not match shape {} of {}", path, name, e.end - e.begin,
         nlohmann::json(e.shape).dump(), e.dtype);
  return e;
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile(MmapFile(path)));
  f->parse();
  return f;
}

void SafetensorsFile::parse() {
  const std::string& p = path();
  const size_t size = file_.size();
  if (size < 8) fail("{}: too short for a safetensors file ({} bytes)", p, size);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(file_.data()[i]) << (8 * i);
  if (n > kMaxHeader) fail("{}: header length {} is implausible (over {})", p, n, kMaxHeader);
  if (n > size - 8) fail("{}: header length {} runs past the end of the file ({} bytes)", p, n, size);
  data_start_ = 8 + static_cast<size_t>(n);
  const char* text = reinterpret_cast<const char*>(file_.data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + n);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: header is not valid JSON: {}", p, e.what());
  }
  if (!header.is_object()) fail("{}: header is not a JSON object", p);
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("{}: __metadata__ is not an object", p);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail("{}: __metadata__ value '{}' is not a string", p, mk);
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    index_.emplace(key, entries_.size());
    entries_.push_back(parse_entry(p, key, value));
  }
  const uint64_t buffer = size - data_start_;
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& e : entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return std::pair(a->begin, a->end) < std::pair(b->begin, b->end); });
  uint64_t at = 0;
  for (const SafetensorsEntry* e : sorted) {
    if (e->begin != at)
      fail("{}: tensor '{}' starts at byte {} of the data, expected {} (tensors must tile the data)", p, e->name,
           e->begin, at);
    at = e->end;
  }
  if (at != buffer) fail("{}: tensors cover {} bytes of data but the file holds {}", p, at, buffer);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

HostTensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) fail("{}: no tensor named '{}'", path(), name);
  if (e->shape.size() > static_cast<size_t>(kMaxDims))
    fail("{}: tensor '{}' has {} dims (at most {})", path(), name, e->shape.size(), kMaxDims);
  HostTensor t(Shape::from(e->shape));
  const uint8_t* src = data(*e);
  const size_t n = t.values.size();
  float* dst = t.values.data();
  if (e->dtype == "F32") {
    if (n) std::memcpy(dst, src, n * 4);
  } else if (e->dtype == "F16" || e->dtype == "BF16") {
    const bool half = e->dtype == "F16";
#pragma omp parallel for schedule(static) if (n >= (1u << 18))
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      dst[i] = half ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
  } else {
    fail("{}: tensor '{}' has dtype {}; only F32, F16 and BF16 can be loaded", path(), name, e->dtype);
  }
  file_.drop_pages(src, static_cast<size_t>(e->end - e->begin));  // copied out: not resident twice
  return t;
}

std::unique_ptr<SafetensorsSet> SafetensorsSet::open(const std::string& path) {
  auto set = std::make_unique<SafetensorsSet>();
  set->path_ = path;
  if (!path.ends_with(".json")) {
    set->files_.push_back(SafetensorsFile::open(path));
    for (const auto& e : set->files_[0]->tensors()) set->where_[e.name] = 0;
    return set;
  }
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    fail("{}: no weight_map object", path);
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::map<std::string, size_t> shard_ids;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) fail("{}: weight_map entry '{}' is not a file name", path, name);
    const std::string file = shard.get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      fail("{}: weight_map entry '{}' names a file outside the directory: {}", path, name, file);
    auto [it, added] = shard_ids.emplace(file, set->files_.size());
    if (added) set->files_.push_back(SafetensorsFile::open((dir / file).string()));
    if (!set->files_[it->second]->find(name))
      fail("{}: tensor '{}' is not in its shard {}", path, name, set->files_[it->second]->path());
    set->where_[name] = it->second;
  }
  return set;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : where_) out.push_back(name);
  return out;
}

const SafetensorsEntry* SafetensorsSet::find(const std::string& name) const {
  const auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second]->find(name);
}

const SafetensorsFile& SafetensorsSet::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail("{}: no tensor named '{}'", path_, name);
  return *files_[it->second];
}

HostTensor SafetensorsSet::load(const std::string& name) const { return file_of(name).load(name); }

}  // namespace arwkv
