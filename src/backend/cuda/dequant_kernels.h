// Reading compact weights in the CUDA backend's kernels (core/tensor.h: F16, BF16 and ggml's
// quantisation blocks, laid out as FORMATS.md §2 describes and formats/quant.cpp decodes on the
// host). weight_at decodes one element from its block, so a kernel thread needs nothing but the
// element's row and column; the tests check every type against the host decoders.
// Launch shape: flat. Included inside the backend's namespace after kernels.h.
#pragma once

GPU_FN uint32_t load_u16_le(const uint8_t* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }

GPU_FN float f16_to_f32_dev(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return gpu_float_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return gpu_float_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
  const float sub = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant · 2^-24, exact
  return sign ? -sub : sub;
}

GPU_FN float f16_at(const uint8_t* p) { return f16_to_f32_dev(load_u16_le(p)); }

// The (scale, min) pair k of a Q4_K / Q5_K super-block's twelve packed bytes.
GPU_FN void k_quant_scale_min(const uint8_t* q, int k, int& sc, int& m) {
  if (k < 4) {
    sc = q[k] & 63;
    m = q[k + 4] & 63;
  } else {
    sc = (q[k + 4] & 0x0F) | ((q[k - 4] >> 6) << 4);
    m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
  }
}

// Element j of block b (32 elements for Q4_0 ... Q8_0, 256 for the K types).
GPU_FN float block_element(DType t, const uint8_t* b, int j) {
  switch (t) {
    case DType::Q8_0: return static_cast<float>(static_cast<int8_t>(b[2 + j])) * f16_at(b);
    case DType::Q4_0: {
      const int q = j < 16 ? (b[2 + j] & 0x0F) : (b[2 + j - 16] >> 4);
      return static_cast<float>(q - 8) * f16_at(b);
    }
    case DType::Q4_1: {
      const int q = j < 16 ? (b[4 + j] & 0x0F) : (b[4 + j - 16] >> 4);
      return static_cast<float>(q) * f16_at(b) + f16_at(b + 2);
    }
    case DType::Q5_0:
    case DType::Q5_1: {
      const int off = t == DType::Q5_0 ? 2 : 4;  // the fifth bits follow the scale (and the min)
      const uint32_t qh = load_u16_le(b + off) | (load_u16_le(b + off + 2) << 16);
      const uint8_t* qs = b + off + 4;
      const int q = (j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4)) | static_cast<int>(((qh >> j) & 1u) << 4);
      return t == DType::Q5_0 ? static_cast<float>(q - 16) * f16_at(b)
                              : static_cast<float>(q) * f16_at(b) + f16_at(b + 2);
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const int g = j / 64, hi = (j % 64) / 32, l = j % 32;
      int sc, m;
      k_quant_scale_min(b + 4, 2 * g + hi, sc, m);
      const uint8_t* qs = b + (t == DType::Q4_K ? 16 : 48);
      int q = hi ? (qs[32 * g + l] >> 4) : (qs[32 * g + l] & 0x0F);
      if (t == DType::Q5_K && ((b[16 + l] >> (2 * g + hi)) & 1)) q += 16;
      return f16_at(b) * static_cast<float>(sc) * static_cast<float>(q) - f16_at(b + 2) * static_cast<float>(m);
    }
    case DType::Q6_K: {
      const int h = j / 128, quarter = (j % 128) / 32, l = j % 32;
      const uint8_t ql = b[64 * h + l + 32 * (quarter & 1)];
      const int nib = quarter >= 2 ? (ql >> 4) : (ql & 0x0F);
      const int q = (nib | (((b[128 + 32 * h + l] >> (2 * quarter)) & 3) << 4)) - 32;
      const int8_t sc = static_cast<int8_t>(b[192 + 8 * h + l / 16 + 2 * quarter]);
      return f16_at(b + 208) * static_cast<float>(sc) * static_cast<float>(q);
    }
    default: return 0.0f;
  }
}

// Element (r, c) of a weight of dtype t whose rows take row_bytes; block / block_bytes describe t.
GPU_FN float weight_at(DType t, const uint8_t* w, int64_t row_bytes, int block, int block_bytes, int64_t r,
                       int64_t c) {
  const uint8_t* row = w + r * row_bytes;
  switch (t) {
    case DType::F32: return reinterpret_cast<const float*>(row)[c];
    case DType::F16: return f16_at(row + 2 * c);
    case DType::BF16: return gpu_float_from_bits(load_u16_le(row + 2 * c) << 16);
    default: return block_element(t, row + (c / block) * block_bytes, static_cast<int>(c % block));
  }
}

// out[r − r0, c] = w[r, c] for the rows [r0, r0 + rows) of a weight with K columns.
GPU_KERNEL void k_dequantize_rows(float* out, const uint8_t* w, DType t, int64_t row_bytes, int block, int block_bytes,
                                  int64_t r0, int64_t rows, int64_t K) {
  ARWKV_FOR_FLAT(i, rows * K) out[i] = weight_at(t, w, row_bytes, block, block_bytes, r0 + i / K, i % K);
}

// y[t, :] = table[ids[t], :] for a compact table of C columns.
GPU_KERNEL void k_embedding_compact(float* y, const uint8_t* table, const int32_t* ids, DType t, int64_t row_bytes,
                                    int block, int block_bytes, int64_t T, int64_t C) {
  ARWKV_FOR_FLAT(i, T * C) y[i] = weight_at(t, table, row_bytes, block, block_bytes, ids[i / C], i % C);
}
