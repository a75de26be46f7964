// Compact-weight products of the CPU backend (see compact.h).
#include "backend/cpu/compact.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "formats/quant.h"

namespace arwkv::cpu {
namespace {

// A tile holds about this many floats (256 KiB: it stays in L2 while sgemm packs it).
constexpr int64_t kTileFloats = 1 << 18;

// Rows per tile for rows of `cols` floats: a multiple of 16 between 16 and 512.
int64_t tile_rows(int64_t cols) { return std::clamp<int64_t>(kTileFloats / std::max<int64_t>(cols, 1) / 16 * 16, 128, 512); }

// The part [begin, end) of n items that thread id of n_thr takes, in steps of `align`.
std::pair<int64_t, int64_t> share(int64_t n, int id, int n_thr, int64_t align) {
  const int64_t step = ((n + n_thr - 1) / n_thr + align - 1) / align * align;
  const int64_t b = std::min(n, id * step);
  return {b, std::min(n, b + step)};
}

std::vector<float>& thread_tile(size_t n) {
  thread_local std::vector<float> tile;
  if (tile.size() < n) tile.resize(n);
  return tile;
}

}  // namespace

void weight_tile_f32(const Tensor& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) {
  const int64_t K = w.cols();
  const size_t row_bytes = dtype_row_bytes(w.dtype, K), skip = dtype_row_bytes(w.dtype, c0);
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = r0; r < r1; ++r)
    dequantize_row(w.dtype, base + static_cast<size_t>(r) * row_bytes + skip, dst + (r - r0) * (c1 - c0), c1 - c0);
}

void matmul_compact(int64_t M, int64_t N, int64_t K, const float* x, const Tensor& w, float beta, float* y, int nt) {
  if (M == 0 || N == 0) return;
  const int64_t rows = tile_rows(K);
#pragma omp parallel num_threads(nt) if (nt > 1 && M * N * K > (1 << 16))
  {
    const auto [n0, n1] = share(N, omp_get_thread_num(), omp_get_num_threads(), 16);
    float* tile = thread_tile(static_cast<size_t>(rows * K)).data();
    for (int64_t a = n0; a < n1; a += rows) {
      const int64_t b = std::min(n1, a + rows), n = b - a;
      weight_tile_f32(w, a, b, 0, K, tile);
      if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(K), 1.0f, tile,
                    static_cast<int>(K), x, 1, beta, y + a, 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(n),
                    static_cast<int>(K), 1.0f, x, static_cast<int>(K), tile, static_cast<int>(K), beta, y + a,
                    static_cast<int>(N));
    }
  }
}

void matmul_dx_compact(int64_t M, int64_t N, int64_t K, const float* dy, const Tensor& w, float beta, float* dx,
                       int nt) {
  if (M == 0 || K == 0) return;
  const int64_t block = dtype_block(w.dtype);
#pragma omp parallel num_threads(nt) if (nt > 1 && M * N * K > (1 << 16))
  {
    const auto [k0, k1] = share(K, omp_get_thread_num(), omp_get_num_threads(), std::max<int64_t>(block, 16));
    const int64_t kw = k1 - k0, rows = tile_rows(kw);
    float* tile = thread_tile(static_cast<size_t>(rows * std::max<int64_t>(kw, 1))).data();
    float b_now = beta;
    for (int64_t a = 0; a < N && kw > 0; a += rows) {
      const int64_t b = std::min(N, a + rows);
      weight_tile_f32(w, a, b, k0, k1, tile);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(M), static_cast<int>(kw),
                  static_cast<int>(b - a), 1.0f, dy + a, static_cast<int>(N), tile, static_cast<int>(kw), b_now,
                  dx + k0, static_cast<int>(K));
      b_now = 1.0f;
    }
    if (N == 0 && kw > 0 && beta == 0.0f)
      for (int64_t m = 0; m < M; ++m) std::fill(dx + m * K + k0, dx + m * K + k1, 0.0f);
  }
}

void embedding_compact(float* y, const Tensor& table, const int32_t* ids, int64_t T) {
  const int64_t C = table.cols();
  for (int64_t t = 0; t < T; ++t) weight_tile_f32(table, ids[t], ids[t] + 1, 0, C, y + t * C);
}

}  // namespace arwkv::cpu
