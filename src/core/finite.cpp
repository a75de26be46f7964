#include "core/finite.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace arwkv {
namespace {

std::atomic<bool> g_allow_nonfinite{false};

}  // namespace

void set_allow_nonfinite(bool allow) { g_allow_nonfinite = allow; }
bool allow_nonfinite() { return g_allow_nonfinite; }

int64_t count_nonfinite(std::span<const float> values) {
  int64_t n = 0;
  for (const float x : values) n += std::isfinite(x) ? 0 : 1;
  return n;
}

void check_finite_weights(std::span<const float> values, const std::string& file, const std::string& tensor) {
  const auto bad = std::find_if(values.begin(), values.end(), [](float x) { return !std::isfinite(x); });
  if (bad == values.end()) return;
  const auto first = static_cast<size_t>(bad - values.begin());
  const int64_t n = count_nonfinite(values.subspan(first));
  const std::string what = fmt::format("{}: tensor {} holds {} non-finite value{} of {} (the first, {}, at index {})",
                                       file, tensor, n, n == 1 ? "" : "s", values.size(), values[first], first);
  if (!allow_nonfinite()) fail("{}; --allow-nonfinite loads it anyway", what);
  fmt::print(stderr, "arwkv: warning: {}; loading it as --allow-nonfinite asks\n", what);
}

}  // namespace arwkv
