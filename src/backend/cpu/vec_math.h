// Small math kernels for the CPU backend, written as plain loops that the compiler vectorises
// (-O3 -march=native): an exp accurate to a few ulp in fp32, tanh, silu, gelu, and dot products.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace arwkv::cpu {

// e^x for fp32: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r^7 (truncation error
// below 1e-8 relative), 2^n by building the exponent bits. Inputs below -87.3 give ~1e-38, not 0.
inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);  // not fmin/fmax: those stay scalar calls
  // Adding 1.5·2^23 rounds x·log2(e) to an integer n held in the low mantissa bits of t (plain
  // arithmetic rather than floor/lround keeps the loop vectorisable).
  const float t = x * 1.44269504f + 12582912.0f;
  const float n = t - 12582912.0f;
  const int32_t ni = std::bit_cast<int32_t>(t) - 0x4B400000;
  const float r = (x - n * 0.693145752f) - n * 1.42860682e-6f;  // ln 2 split in two for precision
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}

inline float silu(float x) { return x / (1.0f + fast_exp(-x)); }

// tanh(x) = 1 − 2/(e^{2x} + 1), exact at the saturated ends (fast_exp clamps, 2/(huge + 1) is 0).
inline float fast_tanh(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }

// GELU, tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
inline float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + fast_tanh(0.797884561f * (x + 0.044715f * x * x * x)));
}

}  // namespace arwkv::cpu
