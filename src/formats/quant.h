// ggml tensor types: ids, block sizes, and conversion of their blocks to fp32 (FORMATS.md §1.6, §2).
// Blocks run along ne[0]; a row of n elements is n / block_size consecutive blocks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace arwkv {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name = nullptr;  // "Q4_1", or null for an id we do not know
  int64_t block_size = 0;      // elements per block
  size_t type_size = 0;        // bytes per block
  bool can_dequantize = false; // whether dequantize_row handles it
};

// Facts about a type id as found in a file; name is null for an unknown id.
GgmlTypeInfo ggml_type_info(uint32_t id);
inline GgmlTypeInfo ggml_type_info(GgmlType t) { return ggml_type_info(static_cast<uint32_t>(t)); }
const char* ggml_type_name(GgmlType t);  // "F32", ..., "?" for unknown

// Bytes of a row of n elements (n a multiple of the block size).
size_t ggml_row_size(GgmlType t, int64_t n);

// Converts n elements (a multiple of the block size) from src to fp32. The type must be one with
// can_dequantize; anything else is an internal error (callers validate types at file open).
void dequantize_row(GgmlType t, const uint8_t* src, float* dst, int64_t n);

// Tensors kept compact in memory (core/tensor.h): the DType that holds a ggml type's storage as it
// is. compact_dtype is true for F16, BF16 and the block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K, and false for F32 and types with no compact form here (they load as fp32).
bool compact_dtype(GgmlType t, DType* out);
GgmlType ggml_type_of(DType t);  // F32, F16, BF16 and the block types; anything else is an internal error
// n elements (a multiple of the block) of a row stored as dtype t to fp32.
inline void dequantize_row(DType t, const uint8_t* src, float* dst, int64_t n) {
  dequantize_row(ggml_type_of(t), src, dst, n);
}

// Reference quantisers used by the writer: n a multiple of 32 (FORMATS.md §2.2).
void quantize_row_q8_0(const float* src, uint8_t* dst, int64_t n);

}  // namespace arwkv
