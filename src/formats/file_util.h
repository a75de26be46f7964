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

// Fills a directory through `fill(tmp)` in a temporary sibling of `dir` (dir + ".tmp-XXXXXXXX",
// created first), then replaces dir with it. Any failure removes the sibling; a filesystem error
// throws arwkv::Error "{dir}: cannot write {what}: ...", others pass through.
void write_directory_atomically(const std::string& dir, const std::string& what,
                                const std::function<void(const std::string& tmp)>& fill);

// fwrite that throws naming path on a short write.
void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path);

}  // namespace arwkv
