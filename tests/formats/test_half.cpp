// fp16 / bf16 conversions against known bit patterns, exhaustive round trips, and an independent
// double-precision rounding reference.
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "test_util.h"

namespace arwkv {
namespace {

TEST(Half, KnownFp16Patterns) {
  struct Case { uint16_t h; float f; };
  const Case cases[] = {
      {0x0000, 0.0f},        {0x3c00, 1.0f},           {0xc000, -2.0f},          {0x3555, 0.333251953125f},
      {0x7bff, 65504.0f},    {0x0400, 6.103515625e-05f}, {0x0001, 5.9604644775390625e-08f},
      {0x03ff, 6.097555160522461e-05f}, {0x8001, -5.9604644775390625e-08f}, {0x3e00, 1.5f}, {0x5640, 100.0f}};
  for (const Case& c : cases) {
    EXPECT_EQ(fp16_to_fp32(c.h), c.f) << std::hex << c.h;
    EXPECT_EQ(fp32_to_fp16(c.f), c.h) << c.f;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7c00), INFINITY);
  EXPECT_EQ(fp16_to_fp32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));
  EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);       // overflow
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);   // just below the rounding point
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);   // tie rounds to even = infinity
  EXPECT_EQ(fp32_to_fp16(2.98023223876953125e-08f), 0x0000);  // exactly half the smallest subnormal: even
  EXPECT_EQ(fp32_to_fp16(2.99e-08f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(1.00048828125f), 0x3c00);   // tie between 0x3c00 and 0x3c01 -> even
  EXPECT_EQ(fp32_to_fp16(1.000732421875f), 0x3c01);  // 0.75 ulp above 1 rounds up
  EXPECT_EQ(fp32_to_fp16(1.00146484375f), 0x3c02);   // tie between 0x3c01 and 0x3c02 -> even
  const uint16_t qnan = fp32_to_fp16(NAN);
  EXPECT_EQ(qnan & 0x7c00, 0x7c00);
  EXPECT_NE(qnan & 0x03ff, 0);
}

TEST(Half, Fp16RoundTripIsExactForEveryPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

// Reference: the representable fp16 value nearest to x (ties to the even pattern), found by
// comparing against neighbours in double precision.
uint16_t reference_fp16(float x) {
  const double v = x;
  uint16_t best = 0;
  double best_err = INFINITY;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(v);
  if (a >= 65520.0) return sign | 0x7c00;
  for (uint32_t m = 0; m <= 0x7bff; ++m) {
    const double e = std::fabs(static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(m))) - a);
    if (e < best_err || (e == best_err && (m & 1) == 0)) {
      best_err = e;
      best = static_cast<uint16_t>(m);
    }
    if (e > best_err && m > static_cast<uint32_t>(best) + 2) break;
  }
  return sign | best;
}

TEST(Half, Fp32ToFp16MatchesNearestEvenReference) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> expo(-27, 16);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  for (int i = 0; i < 400; ++i) {
    const float x = std::ldexp(mant(rng), expo(rng)) * (i % 2 ? -1.0f : 1.0f);
    ASSERT_EQ(fp32_to_fp16(x), reference_fp16(x)) << x;
  }
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);  // above the tie
  EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to infinity
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN is quieted
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0xffc00000u)), 0xffc0);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), b);
  }
}

}  // namespace
}  // namespace arwkv
