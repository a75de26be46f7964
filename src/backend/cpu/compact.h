// Products with compact weights on the CPU (core/tensor.h: F16, BF16, quantisation blocks): the
// weight is dequantised a tile of rows at a time into a small fp32 buffer of each thread, and
// single-threaded OpenBLAS multiplies by that tile, so no fp32 copy of the whole weight exists.
// Threads split the weight's rows (forward) or columns in whole blocks (input gradient), so every
// element is dequantised once per call. Arguments are checked by the caller (op_checks).
#pragma once

#include "backend/ops.h"

namespace arwkv::cpu {

// Rows [r0, r1) and columns [c0, c1) (multiples of the block) of a 2-D host weight of any weight
// dtype as fp32 into dst, row after row (leading dimension c1 − c0).
void weight_tile_f32(const Tensor& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst);

// y[M, N] = x[M, K]·w[N, K]ᵀ + beta·y for a compact w, with nt threads.
void matmul_compact(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& w, float beta, float* y, int nt);
// dx[M, K] = dy[M, N]·w[N, K] + beta·dx for a compact w, with nt threads.
void matmul_dx_compact(int64_t M, int64_t N, int64_t K, const float* dy, const Tensor& w, float beta, float* dx,
                       int nt);
// y[t, :] = table[ids[t], :] for a compact table; ids already checked.
void embedding_compact(float* y, const Tensor& table, const int32_t* ids, int64_t T);

}  // namespace arwkv::cpu
