// The device runtime of the emulated CUDA backend: host memory stands in for device memory, kernels
// run through emu::launch, and GEMMs go to OpenBLAS with cuBLAS's column-major argument convention,
// so the backend's row-major-to-cuBLAS mapping is exercised exactly as on the GPU.
// Included inside the backend's namespace by cuda_ops_emulated.cpp.
// Needs (included by the TU first): cblas.h, <cstdlib>, <cstring>, <string>, backend/cuda/gpu.h.
#pragma once

namespace rt {

struct Grid {
  unsigned x = 1, y = 1, z = 1;
};

constexpr const char* kBackendName = "cuda-emulated";
constexpr unsigned kMaxFlatBlocks = 8;  // few blocks: the grid-stride loops cover the rest

inline void init() {}

template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), Grid grid, Grid block, size_t dyn_shared, bool barriers, Args... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  emu::launch(emu::Dim{grid.x, grid.y, grid.z}, emu::Dim{block.x, block.y, block.z}, dyn_shared, barriers,
              [&] { kernel(static_cast<KernelArgs>(args)...); });
}

inline void free_device(void* p) { std::free(p); }
inline void* alloc_device(size_t bytes) {
  const size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) fail("{}: out of memory allocating {} bytes", kBackendName, bytes);
  std::memset(p, 0, n);
  return p;
}
inline void copy_to_device(void* dst, const void* src, size_t n) { if (n) std::memcpy(dst, src, n); }
inline void copy_to_host(void* dst, const void* src, size_t n) { if (n) std::memcpy(dst, src, n); }
inline void copy_on_device(void* dst, const void* src, size_t n) { if (n) std::memmove(dst, src, n); }
inline void zero_device(void* dst, size_t n) { if (n) std::memset(dst, 0, n); }
inline void synchronize() {}

// C[m, n] = alpha·op(A)·op(B) + beta·C, all column-major (cuBLAS's cublasSgemm).
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace rt
