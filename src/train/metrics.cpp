// The metrics file and the progress line's number formats (metrics.h).
#include "train/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"

namespace arwkv {

MetricsLog::MetricsLog(const std::string& path, uint64_t keep_bytes) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path)) {
    if (fs::file_size(path) < keep_bytes) fail("{}: shorter than the checkpoint recorded ({} bytes)", path, keep_bytes);
    fs::resize_file(path, keep_bytes, ec);
    if (ec) fail("{}: cannot cut back to {} bytes: {}", path, keep_bytes, ec.message());
  } else if (keep_bytes > 0) {
    fail("{}: missing, though the checkpoint recorded {} bytes of it", path, keep_bytes);
  }
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail("{}: cannot open for appending", path);
  bytes_ = keep_bytes;
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    fail("{}: write failed", path_);
  bytes_ += line.size();
}

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace arwkv
