// The seeded random numbers of student initialisation. Each tensor draws from its own stream,
// derived from the user's seed and the tensor's name, so a tensor's values depend only on those two
// (not on the order tensors are made in) and the same seed gives the same student bit for bit on
// every platform: splitmix64 for the bits, Box–Muller for normals, no std:: distributions (their
// output is implementation-defined).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string_view>

namespace arwkv {

class InitRng {
 public:
  InitRng(uint64_t seed, std::string_view stream) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the stream name
    for (unsigned char c : stream) h = (h ^ c) * 0x100000001b3ull;
    state_ = seed ^ (h * 0x9e3779b97f4a7c15ull);
    next_u64();
  }

  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  // Uniform in (0, 1): 53 random bits, never exactly 0.
  double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53; }

  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_ = 0;
};

}  // namespace arwkv
