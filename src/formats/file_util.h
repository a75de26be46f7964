// Small helpers shared by the format writers: write a file atomically (a temporary file next to
// the target, renamed over it once complete, so readers never see a half-written file).
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace arwkv {

// Writes through `emit(FILE*)` to path + ".tmp", flushes, then renames onto path. Any failure
// removes the temporary file and throws arwkv::Error naming path.
void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& emit);

// fwrite that throws naming path on a short write.
void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path);

}  // namespace arwkv
