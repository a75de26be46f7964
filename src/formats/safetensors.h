// safetensors reader and writer (FORMATS.md §6).
//
// Layout: u64 LE N, then N bytes of UTF-8 JSON, then the data buffer. The JSON object maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to the buffer,
// end exclusive) and may hold "__metadata__" (string -> string). Data is little-endian, row-major,
// possibly unaligned. Sorted by offset, the tensors must tile the buffer exactly.
//
// Sharded checkpoints have model.safetensors.index.json with {"weight_map": {name: shard file}}.
// Files are memory-mapped; F32, F16 and BF16 tensors load as fp32, other dtypes are listed but
// refuse to load. Every problem throws arwkv::Error naming the file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "core/tensor.h"

namespace arwkv {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;   // row-major
  uint64_t begin = 0, end = 0;  // byte range in the data buffer

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<SafetensorsEntry>& tensors() const { return entries_; }  // in header order
  const SafetensorsEntry* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const uint8_t* data(const SafetensorsEntry& e) const { return file_.data() + data_start_ + e.begin; }
  // fp32; throws for a missing name or dtype. The tensor's pages of the mapping are dropped after
  // the copy (read back from the file if touched again), so a model is not resident twice.
  HostTensor load(const std::string& name) const;

 private:
  explicit SafetensorsFile(MmapFile f) : file_(std::move(f)) {}
  void parse();

  MmapFile file_;
  size_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One or more safetensors files seen as one set of tensors: a single file, or an index.json and
// its shards (resolved relative to the index's directory).
class SafetensorsSet {
 public:
  static std::unique_ptr<SafetensorsSet> open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  const SafetensorsEntry* find(const std::string& name) const;
  const SafetensorsFile& file_of(const std::string& name) const;
  HostTensor load(const std::string& name) const;

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

// Writes tensors given as fp32 host data, stored as F32, F16 or BF16, with optional string
// metadata; the header is padded with spaces to a multiple of 8 and the file is replaced atomically.
class SafetensorsWriter {
 public:
  void add(const std::string& name, const HostTensor& t, DType stored = DType::F32);
  void add(const std::string& name, const float* data, const Shape& shape, DType stored = DType::F32);
  // A tensor whose values are made only while write() runs, one tensor at a time, so that a large
  // model is never held twice in memory; `values` must return `shape` (else write() throws).
  void add_deferred(const std::string& name, const Shape& shape, DType stored, std::function<HostTensor()> values);
  // The same with the stored bytes made directly (little-endian, numel × the dtype's size), for a
  // tensor already held in `stored`: no fp32 copy on the way.
  void add_deferred_bytes(const std::string& name, const Shape& shape, DType stored,
                          std::function<void(std::vector<uint8_t>&)> bytes);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const std::string& path) const;

 private:
  struct Item {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
    uint64_t size = 0;                    // bytes in the file
    Shape full_shape;
    DType stored = DType::F32;
    std::function<HostTensor()> values;   // deferred: made while writing
    std::function<void(std::vector<uint8_t>&)> encoded;  // deferred, as stored bytes
  };
  void check_new(const std::string& name) const;
  std::vector<Item> items_;
  std::map<std::string, std::string> metadata_;
};

// Writes {"metadata": {"total_size": ...}, "weight_map": {...}} for shards written by the writer.
void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size);

}  // namespace arwkv
