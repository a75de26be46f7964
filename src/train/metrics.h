// What a run reports: metrics as JSON lines appended to out/metrics.jsonl (one object per line,
// "type": "train" per optimiser step, "val" per validation), and the progress line on stderr.
//   train: stage, stage_index, step, steps, tokens, loss, lr, grad_norm, tokens_per_s, seconds
//   val:   stage, stage_index, step, tokens, loss (+ kl, top1 where the objective gives them)
// On resume the file is cut back to its length at the checkpoint, so it reads as one run.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

namespace arwkv {

class MetricsLog {
 public:
  // Opens path for appending after cutting it to `keep_bytes` (creating it when missing).
  MetricsLog(const std::string& path, uint64_t keep_bytes);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);  // one line, flushed
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t bytes_ = 0;
};

// "1.23M", "456k", "789": token counts in the progress line.
std::string human_count(double n);
// "1h02m", "3m05s", "12s".
std::string human_duration(double seconds);

}  // namespace arwkv
