// The device runtime of the CUDA backend on a real GPU: the CUDA runtime for memory and launches,
// cuBLAS for GEMMs, everything on the default stream. Errors become arwkv::Error with what was
// asked and what the device has. Included inside the backend's namespace by cuda_ops.cu.
// Needs (included by the TU first): cublas_v2.h, cuda_runtime.h, <cstdlib>, <string>.
#pragma once

namespace rt {

struct Grid {
  unsigned x = 1, y = 1, z = 1;
};

constexpr const char* kBackendName = "cuda";
constexpr unsigned kMaxFlatBlocks = 4096;
constexpr int kMinMajor = 8;  // built for sm_80 and sm_90

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(e));
}

struct Device {
  cublasHandle_t blas = nullptr;
  cudaDeviceProp prop{};
};

inline Device& device() {
  static Device d;
  return d;
}

// Checks the device once; throws with the reason when there is none or it is too old.
inline void init() {
  Device& d = device();
  if (d.blas) return;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    fail("no CUDA device: {}", e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
  check(cudaGetDeviceProperties(&d.prop, 0), "cudaGetDeviceProperties");
  if (d.prop.major < kMinMajor)
    fail("CUDA: {} has compute capability {}.{}; the CUDA backend needs {}.0 or newer (built for sm_80 and sm_90)",
         d.prop.name, d.prop.major, d.prop.minor, kMinMajor);
  if (cublasCreate(&d.blas) != CUBLAS_STATUS_SUCCESS) fail("CUDA: cublasCreate failed on {}", d.prop.name);
}

// ARWKV_CUDA_MATMUL, or fp32 (see matmul_compute).
inline const char* matmul_mode() {
  const char* e = std::getenv("ARWKV_CUDA_MATMUL");
  return e && *e ? e : "fp32";
}

inline std::string device_description() {
  const cudaDeviceProp& p = device().prop;
  return fmt::format("{} (compute capability {}.{}, {} MiB; {} GEMMs)", p.name, p.major, p.minor,
                     p.totalGlobalMem >> 20, matmul_mode());
}

template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), Grid grid, Grid block, size_t dyn_shared, bool /*barriers*/,
            Args... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  kernel<<<dim3(grid.x, grid.y, grid.z), dim3(block.x, block.y, block.z), dyn_shared>>>(
      static_cast<KernelArgs>(args)...);
  check(cudaGetLastError(), "kernel launch");
}

inline void free_device(void* p) { cudaFree(p); }
inline void* alloc_device(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("CUDA: out of GPU memory: {:.1f} MiB needed, {:.1f} MiB free of {:.1f} MiB on {}", bytes / 1048576.0,
         free_b / 1048576.0, total_b / 1048576.0, device().prop.name);
  }
  check(e, "cudaMalloc");
  check(cudaMemset(p, 0, bytes ? bytes : 1), "cudaMemset");
  return p;
}
inline void copy_to_device(void* dst, const void* src, size_t n) {
  if (n) check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "copy to the GPU");
}
inline void copy_to_host(void* dst, const void* src, size_t n) {
  if (n) check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "copy from the GPU");
}
inline void copy_on_device(void* dst, const void* src, size_t n) {
  if (n) check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "copy on the GPU");
}
inline void zero_device(void* dst, size_t n) {
  if (n) check(cudaMemset(dst, 0, n), "cudaMemset");
}
inline void synchronize() { check(cudaDeviceSynchronize(), "a kernel"); }

// The GEMMs' compute type, from ARWKV_CUDA_MATMUL: fp32 (the default: plain fp32, what the tests
// compare against the CPU backend), tf32 or bf16 (tensor cores, inputs rounded to that precision,
// accumulation and outputs in fp32).
inline cublasComputeType_t matmul_compute() {
  static const cublasComputeType_t type = [] {
    const std::string m = matmul_mode();
    if (m == "fp32") return CUBLAS_COMPUTE_32F;
    if (m == "tf32") return CUBLAS_COMPUTE_32F_FAST_TF32;
    if (m == "bf16") return CUBLAS_COMPUTE_32F_FAST_16BF;
    fail("ARWKV_CUDA_MATMUL={}: expected fp32, tf32 or bf16", m);
  }();
  return type;
}

// C[m, n] = alpha·op(A)·op(B) + beta·C, all column-major fp32.
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  const cublasStatus_t s =
      cublasGemmEx(device().blas, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                   &alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta, C, CUDA_R_32F, ldc, matmul_compute(),
                   CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) fail("CUDA: cublasGemmEx ({}x{}x{}) failed with status {}", m, n, k, static_cast<int>(s));
}

}  // namespace rt
