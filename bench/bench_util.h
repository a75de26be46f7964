// Small helpers shared by the benchmark programs: seeded random token ids, wall-clock timing,
// medians, the machine's load average, this process's memory counters, and filling or copying a
// model state through its named tensors (ModelState::tensors()).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "model/language_model.h"

namespace arwkv::bench {

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = pick(rng);
  return ids;
}

template <typename F>
double seconds_of(F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The median of samples (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// "1.23 0.98 0.75": the 1, 5 and 15 minute load averages from /proc/loadavg.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// A "Key:   123 kB" field of /proc/self/status in KiB (VmHWM: peak resident set, VmRSS: now).
inline int64_t proc_status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  fail("/proc/self/status: no field {}", key);
}

// Bytes of everything the state holds now, as its named tensors report it (an RNN's matrices and
// shifted tokens; a KV cache's filled rows), without workspace or unused capacity.
inline size_t state_tensor_bytes(ModelState& s) {
  size_t n = 0;
  for (const StateTensor& t : s.tensors()) n += t.tensor.nbytes();
  return n;
}

// Declares that s holds n_tokens and writes seeded N(0, 1) values into all of its tensors, a few
// rows at a time so that the host staging memory stays small. Stands in for a prefill where only
// the size of the state matters (decode time and resident memory do not depend on its values).
inline void write_random_state(Ops& ops, ModelState& s, int64_t n_tokens, uint32_t seed) {
  s.set_n_tokens(n_tokens);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> host;
  for (const StateTensor& st : s.tensors()) {
    const Tensor& t = st.tensor;
    ARWKV_ASSERT(t.dtype == DType::F32, "state tensor {} is not F32", st.name);
    const int64_t rows = t.shape.ndim ? t.dim(0) : 1, per_row = t.numel() / std::max<int64_t>(rows, 1);
    const int64_t step = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(per_row, 1));
    for (int64_t r = 0; r < rows; r += step) {
      Tensor part = t.shape.ndim ? t.slice_rows(r, std::min(rows, r + step)) : t;
      host.resize(static_cast<size_t>(part.numel()));
      for (float& x : host) x = normal(rng);
      ops.upload(part, host.data());
    }
  }
}

// dst := src for two states of the same model (same tensor names and shapes), through the host.
inline void copy_state(Ops& ops, ModelState& dst, ModelState& src) {
  dst.set_n_tokens(src.n_tokens());
  std::vector<StateTensor> from = src.tensors(), to = dst.tensors();
  ARWKV_ASSERT(from.size() == to.size(), "states of {} and {} tensors", from.size(), to.size());
  std::vector<char> host;
  for (size_t i = 0; i < from.size(); ++i) {
    ARWKV_ASSERT(from[i].tensor.nbytes() == to[i].tensor.nbytes(), "state tensor {} differs", from[i].name);
    host.resize(from[i].tensor.nbytes());
    ops.download(host.data(), from[i].tensor);
    ops.upload(to[i].tensor, host.data());
  }
}

}  // namespace arwkv::bench
