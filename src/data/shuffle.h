// Seeded shuffles that give the same order on every platform and compiler (std::shuffle and the
// standard distributions do not promise that): SplitMix64 numbers, Fisher-Yates with rejection.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

namespace arwkv {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }

 private:
  uint64_t s_;
};

// A permutation of 0..n-1 determined by seed and stream (e.g. the epoch).
inline std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream = 0) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  SplitMix64 rng(seed ^ (0xd1b54a32d192ed03ull * (stream + 1)));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(static_cast<uint64_t>(i) + 1)]);
  return p;
}

}  // namespace arwkv
