// Shared by the fuzz targets: a per-process scratch directory for parsers that read files, and the
// rule every target checks. A parser given any bytes may throw arwkv::Error (a bad file is the
// user's problem, reported with the file and what is wrong); any other exception escapes the
// target and libFuzzer reports it, as it reports crashes, leaks and undefined behaviour.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace arwkv::fuzz {

// The scratch directory: under $ARWKV_FUZZ_TMP, else /dev/shm (memory) when it exists, else the
// system temporary directory; one per process, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base;
    if (const char* t = std::getenv("ARWKV_FUZZ_TMP")) base = t;
    else if (std::filesystem::is_directory("/dev/shm")) base = "/dev/shm";
    else base = std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("arwkv-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(scratch_dir()); });
    return d;
  }();
  return dir;
}

// Writes bytes to name inside the scratch directory (or a subdirectory of it) and returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();  // the scratch disk is full: not a finding of the parser
  return p.string();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; arwkv::Error is the expected outcome of bad input. Returns whether f completed.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The input cut at each occurrence of sep, for targets whose input is several files.
inline std::vector<std::string_view> split_parts(std::string_view s, std::string_view sep, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = s.find(sep);
    if (at == std::string_view::npos) break;
    parts.push_back(s.substr(0, at));
    s.remove_prefix(at + sep.size());
  }
  parts.push_back(s);
  return parts;
}

}  // namespace arwkv::fuzz
