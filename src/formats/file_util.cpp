// Atomic file writing for the format writers.
#include "formats/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "core/error.h"

namespace arwkv {

void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n) fail("{}: write failed: {}", path, std::strerror(errno));
}

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& emit) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("{}: cannot create {}: {}", path, tmp, std::strerror(errno));
  try {
    emit(f);
    if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) fail("{}: write failed: {}", path, std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    fail("{}: write failed: {}", path, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("{}: cannot rename {} onto it: {}", path, tmp, ec.message());
  }
}

void write_directory_atomically(const std::string& dir, const std::string& what,
                                const std::function<void(const std::string& tmp)>& fill) {
  namespace fs = std::filesystem;
  std::random_device rd;
  const fs::path out(dir), tmp(fmt::format("{}.tmp-{:08x}", dir, rd()));
  try {
    fs::create_directories(tmp);
    fill(tmp.string());
    if (fs::exists(out)) fs::remove_all(out);
    fs::rename(tmp, out);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fail("{}: cannot write {}: {}", dir, what, e.what());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace arwkv
