// A read-only memory-mapped file. The mapping lives as long as the object; a file that cannot be
// opened or mapped throws arwkv::Error naming its path. An empty file maps to size 0 and a null data().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace arwkv {

class MmapFile {
 public:
  explicit MmapFile(const std::string& path);
  MmapFile(MmapFile&& o) noexcept;
  MmapFile& operator=(MmapFile&& o) noexcept;
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;
  ~MmapFile();

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Lets the kernel drop the pages wholly inside [p, p + n) from this process (they are read back
  // from the file if touched again): for data copied out once, so it is not resident twice.
  void drop_pages(const uint8_t* p, size_t n) const;

 private:
  void release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace arwkv
