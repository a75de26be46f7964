// Dequantisation of ggml blocks to fp32, one function per block type, exactly as FORMATS.md §2
// describes them; plus the reference Q8_0 quantiser.
#include "formats/quant.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace arwkv {
namespace {

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
float load_f16(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }

constexpr int64_t QK = 32;
constexpr int64_t QK_K = 256;

void block_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Low nibbles give elements 0..15, high nibbles 16..31; each half is its own loop so that the
// compiler vectorises it (these decoders also feed the compact matmuls, tile by tile).
void block_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  uint8_t qs[16];  // a local copy: y cannot alias it, so the loops vectorise
  std::memcpy(qs, b + 2, 16);
  for (int j = 0; j < 16; ++j) y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
  for (int j = 0; j < 16; ++j) y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
}

void block_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  uint8_t qs[16];
  std::memcpy(qs, b + 4, 16);
  for (int j = 0; j < 16; ++j) y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
  for (int j = 0; j < 16; ++j) y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
}

// The 5-bit values of a Q5_0/Q5_1 block: low nibbles from qs, fifth bits from qh.
void q5_values(const uint8_t* qh_bytes, const uint8_t* qs_bytes, int* q) {
  const uint32_t qh = load_u32(qh_bytes);
  uint8_t qs[16];  // a local copy: q cannot alias it, so the loops vectorise
  std::memcpy(qs, qs_bytes, 16);
  for (int j = 0; j < 16; ++j) q[j] = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
  for (int j = 0; j < 16; ++j) q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
}

void block_q5_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  int q[32];
  q5_values(b + 2, b + 6, q);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
}

void block_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  int q[32];
  q5_values(b + 4, b + 8, q);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(q[j]) * d + m;
}

void block_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = load_f16(b + 80), dmin = load_f16(b + 82);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int s = 0; s < 2; ++s) {
        const uint8_t sc = scales[8 * h + 2 * j + s];
        const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          const int q = (qs[32 * h + 16 * s + l] >> (2 * j)) & 3;
          y[128 * h + 32 * j + 16 * s + l] = dl * static_cast<float>(q) - ml;
        }
      }
}

int q3_k_scale(const uint8_t* sc, int i) {
  const int low = i < 8 ? (sc[i] & 0xF) : (sc[i - 8] >> 4);
  const int high = (sc[8 + (i % 4)] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void block_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* scales = b + 96;
  const float d = load_f16(b + 108);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int s = 0; s < 2; ++s) {
        const float dl = d * static_cast<float>(q3_k_scale(scales, 8 * h + 2 * j + s));
        for (int l = 0; l < 16; ++l) {
          const int q2 = (qs[32 * h + 16 * s + l] >> (2 * j)) & 3;
          const bool hbit = (hmask[16 * s + l] >> (4 * h + j)) & 1;
          y[128 * h + 32 * j + 16 * s + l] = dl * static_cast<float>(q2 - (hbit ? 0 : 4));
        }
      }
}

// The eight 6-bit (scale, min) pairs of a Q4_K/Q5_K super-block.
void k_scale_min(const uint8_t* q, int k, int& sc, int& m) {
  if (k < 4) {
    sc = q[k] & 63;
    m = q[k + 4] & 63;
  } else {
    sc = (q[k + 4] & 0x0F) | ((q[k - 4] >> 6) << 4);
    m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
  }
}

void block_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int g = 0; g < 4; ++g) {
    int sc0, m0, sc1, m1;
    k_scale_min(scales, 2 * g, sc0, m0);
    k_scale_min(scales, 2 * g + 1, sc1, m1);
    for (int l = 0; l < 32; ++l) {
      const uint8_t q = qs[32 * g + l];
      y[64 * g + l] = d * static_cast<float>(sc0) * static_cast<float>(q & 0xF) - dmin * static_cast<float>(m0);
      y[64 * g + 32 + l] = d * static_cast<float>(sc1) * static_cast<float>(q >> 4) - dmin * static_cast<float>(m1);
    }
  }
}

void block_q5_k(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int g = 0; g < 4; ++g) {
    int sc0, m0, sc1, m1;
    k_scale_min(scales, 2 * g, sc0, m0);
    k_scale_min(scales, 2 * g + 1, sc1, m1);
    for (int l = 0; l < 32; ++l) {
      const uint8_t q = qs[32 * g + l];
      const int lo = (q & 0xF) + (((qh[l] >> (2 * g)) & 1) ? 16 : 0);
      const int hi = (q >> 4) + (((qh[l] >> (2 * g + 1)) & 1) ? 16 : 0);
      y[64 * g + l] = d * static_cast<float>(sc0) * static_cast<float>(lo) - dmin * static_cast<float>(m0);
      y[64 * g + 32 + l] = d * static_cast<float>(sc1) * static_cast<float>(hi) - dmin * static_cast<float>(m1);
    }
  }
}

// Per half of 128: quarter p (elements 32p .. 32p+31) takes the low (p < 2) or high nibble of
// ql[l + 32·(p & 1)] and bits 2p, 2p+1 of qh[l]; 16 consecutive elements share a scale.
void block_q6_k(const uint8_t* b, float* y) {
  const float d = load_f16(b + 208);
  for (int h = 0; h < 2; ++h) {
    uint8_t ql[64], qh[32];  // local copies: y cannot alias them, so the loops vectorise
    int8_t sc[8];
    std::memcpy(ql, b + 64 * h, 64);
    std::memcpy(qh, b + 128 + 32 * h, 32);
    std::memcpy(sc, b + 192 + 8 * h, 8);
    for (int p = 0; p < 4; ++p) {
      const uint8_t* qlp = ql + 32 * (p & 1);
      const int shift = p < 2 ? 0 : 4;
      for (int g = 0; g < 2; ++g) {
        const float dl = d * static_cast<float>(sc[g + 2 * p]);
        float* out = y + 128 * h + 32 * p + 16 * g;
        for (int i = 0; i < 16; ++i) {
          const int l = 16 * g + i;
          const int q = (((qlp[l] >> shift) & 0xF) | (((qh[l] >> (2 * p)) & 3) << 4)) - 32;
          out[i] = dl * static_cast<float>(q);
        }
      }
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

void run_blocks(BlockFn fn, int64_t block, size_t bytes, const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / block; ++i) fn(src + static_cast<size_t>(i) * bytes, dst + i * block);
}

}  // namespace

GgmlTypeInfo ggml_type_info(uint32_t id) {
  switch (static_cast<GgmlType>(id)) {
    case GgmlType::F32: return {"F32", 1, 4, true};
    case GgmlType::F16: return {"F16", 1, 2, true};
    case GgmlType::Q4_0: return {"Q4_0", QK, 18, true};
    case GgmlType::Q4_1: return {"Q4_1", QK, 20, true};
    case GgmlType::Q5_0: return {"Q5_0", QK, 22, true};
    case GgmlType::Q5_1: return {"Q5_1", QK, 24, true};
    case GgmlType::Q8_0: return {"Q8_0", QK, 34, true};
    case GgmlType::Q8_1: return {"Q8_1", QK, 36, false};
    case GgmlType::Q2_K: return {"Q2_K", QK_K, 84, true};
    case GgmlType::Q3_K: return {"Q3_K", QK_K, 110, true};
    case GgmlType::Q4_K: return {"Q4_K", QK_K, 144, true};
    case GgmlType::Q5_K: return {"Q5_K", QK_K, 176, true};
    case GgmlType::Q6_K: return {"Q6_K", QK_K, 210, true};
    case GgmlType::Q8_K: return {"Q8_K", QK_K, 292, false};
    case GgmlType::I8: return {"I8", 1, 1, false};
    case GgmlType::I16: return {"I16", 1, 2, false};
    case GgmlType::I32: return {"I32", 1, 4, false};
    case GgmlType::I64: return {"I64", 1, 8, false};
    case GgmlType::F64: return {"F64", 1, 8, false};
    case GgmlType::BF16: return {"BF16", 1, 2, true};
  }
  return {};
}

const char* ggml_type_name(GgmlType t) {
  const GgmlTypeInfo info = ggml_type_info(t);
  return info.name ? info.name : "?";
}

size_t ggml_row_size(GgmlType t, int64_t n) {
  const GgmlTypeInfo info = ggml_type_info(t);
  ARWKV_ASSERT(info.name && n % info.block_size == 0, "row of {} {} elements", n, ggml_type_name(t));
  return static_cast<size_t>(n / info.block_size) * info.type_size;
}

void dequantize_row(GgmlType t, const uint8_t* src, float* dst, int64_t n) {
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(src + 2 * i);
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(src + 2 * i));
      return;
    case GgmlType::Q4_0: return run_blocks(block_q4_0, QK, 18, src, dst, n);
    case GgmlType::Q4_1: return run_blocks(block_q4_1, QK, 20, src, dst, n);
    case GgmlType::Q5_0: return run_blocks(block_q5_0, QK, 22, src, dst, n);
    case GgmlType::Q5_1: return run_blocks(block_q5_1, QK, 24, src, dst, n);
    case GgmlType::Q8_0: return run_blocks(block_q8_0, QK, 34, src, dst, n);
    case GgmlType::Q2_K: return run_blocks(block_q2_k, QK_K, 84, src, dst, n);
    case GgmlType::Q3_K: return run_blocks(block_q3_k, QK_K, 110, src, dst, n);
    case GgmlType::Q4_K: return run_blocks(block_q4_k, QK_K, 144, src, dst, n);
    case GgmlType::Q5_K: return run_blocks(block_q5_k, QK_K, 176, src, dst, n);
    case GgmlType::Q6_K: return run_blocks(block_q6_k, QK_K, 210, src, dst, n);
    default: break;
  }
  ARWKV_ASSERT(false, "dequantize_row: unsupported type {}", ggml_type_name(t));
}

bool compact_dtype(GgmlType t, DType* out) {
  switch (t) {
    case GgmlType::F16: *out = DType::F16; return true;
    case GgmlType::BF16: *out = DType::BF16; return true;
    case GgmlType::Q4_0: *out = DType::Q4_0; return true;
    case GgmlType::Q4_1: *out = DType::Q4_1; return true;
    case GgmlType::Q5_0: *out = DType::Q5_0; return true;
    case GgmlType::Q5_1: *out = DType::Q5_1; return true;
    case GgmlType::Q8_0: *out = DType::Q8_0; return true;
    case GgmlType::Q4_K: *out = DType::Q4_K; return true;
    case GgmlType::Q5_K: *out = DType::Q5_K; return true;
    case GgmlType::Q6_K: *out = DType::Q6_K; return true;
    default: return false;
  }
}

GgmlType ggml_type_of(DType t) {
  switch (t) {
    case DType::F32: return GgmlType::F32;
    case DType::F16: return GgmlType::F16;
    case DType::BF16: return GgmlType::BF16;
    case DType::Q4_0: return GgmlType::Q4_0;
    case DType::Q4_1: return GgmlType::Q4_1;
    case DType::Q5_0: return GgmlType::Q5_0;
    case DType::Q5_1: return GgmlType::Q5_1;
    case DType::Q8_0: return GgmlType::Q8_0;
    case DType::Q4_K: return GgmlType::Q4_K;
    case DType::Q5_K: return GgmlType::Q5_K;
    case DType::Q6_K: return GgmlType::Q6_K;
    case DType::I32: break;
  }
  ARWKV_ASSERT(false, "no ggml type for dtype {}", dtype_name(t));
  return GgmlType::F32;
}

void quantize_row_q8_0(const float* src, uint8_t* dst, int64_t n) {
  ARWKV_ASSERT(n % QK == 0, "Q8_0 row of {} elements", n);
  for (int64_t b = 0; b < n / QK; ++b) {
    const float* x = src + b * QK;
    uint8_t* out = dst + b * 34;
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = fp32_to_fp16(d);
    out[0] = static_cast<uint8_t>(dh & 0xff);
    out[1] = static_cast<uint8_t>(dh >> 8);
    for (int j = 0; j < QK; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

}  // namespace arwkv
