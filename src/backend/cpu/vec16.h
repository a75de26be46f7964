// Sixteen fp32 lanes for the WKV-7 kernels (wkv7.cpp, wkv7_backward.cpp): vf16 values, load16,
// store16 and hsum.
//
// With AVX-512 a vf16 is one register (GCC/Clang's vector type of 64 bytes). Without it, GCC lowers
// that 64-byte type through the stack (every operation a spill, every scalar broadcast sixteen
// stores: measured 30× slower on an AVX2 EPYC), so there a vf16 is a pair of 8-lane vectors with
// the same operators, which stays in two AVX2 registers.
#pragma once

#include <cstring>

namespace arwkv::cpu {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vf16 values never cross a function boundary outside inlined code

using vf8 = float __attribute__((vector_size(32)));
using vf4 = float __attribute__((vector_size(16)));

#if defined(__AVX512F__)

using vf16 = float __attribute__((vector_size(64)));

inline vf16 load16(const float* p) {
  vf16 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline void store16(float* p, vf16 x) { std::memcpy(p, &x, sizeof x); }
inline vf8 fold8(vf16 x) {
  return __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
         __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
}

#else

struct vf16 {
  vf8 lo, hi;
};
inline vf16 operator+(vf16 a, vf16 b) { return {a.lo + b.lo, a.hi + b.hi}; }
inline vf16 operator*(vf16 a, vf16 b) { return {a.lo * b.lo, a.hi * b.hi}; }
inline vf16 operator*(vf16 a, float s) { return {a.lo * s, a.hi * s}; }
inline vf16 operator*(float s, vf16 a) { return {s * a.lo, s * a.hi}; }
inline vf16& operator+=(vf16& a, vf16 b) { return a = a + b; }

inline vf16 load16(const float* p) {
  vf16 x;
  std::memcpy(&x.lo, p, sizeof x.lo);
  std::memcpy(&x.hi, p + 8, sizeof x.hi);
  return x;
}
inline void store16(float* p, vf16 x) {
  std::memcpy(p, &x.lo, sizeof x.lo);
  std::memcpy(p + 8, &x.hi, sizeof x.hi);
}
inline vf8 fold8(vf16 x) { return x.lo + x.hi; }

#endif

// The sum of the lanes as a tree (halving), not a 16-long chain of scalar adds.
inline float hsum(vf16 x) {
  const vf8 h8 = fold8(x);
  const vf4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  const vf4 h2 = h4 + __builtin_shufflevector(h4, h4, 2, 3, 0, 1);
  return h2[0] + h2[1];
}

#pragma GCC diagnostic pop

}  // namespace arwkv::cpu
