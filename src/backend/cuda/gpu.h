// The kernel language of the CUDA backend. The kernels (kernels.h) are written once against these
// names and compiled twice: by nvcc for the GPU, and by the host compiler against the CPU emulation
// of emu/emu.h, which is how the tests check them on machines without a GPU.
//   GPU_KERNEL         a kernel (__global__)
//   GPU_FN             a helper called from kernels
//   GPU_SHARED         a block's shared array (static thread_local under emulation: one block runs at a time per thread)
//   gpu_sync()         __syncthreads
//   gpu_dyn_shared<T>  the launch's dynamic shared memory
//   gpu_float_from_bits  the float whose IEEE-754 bits are u (__uint_as_float)
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define GPU_KERNEL __global__
#define GPU_FN __device__ __forceinline__
#define GPU_SHARED __shared__
#define GPU_UNROLL _Pragma("unroll")
namespace arwkv::gpu_lang {
__device__ __forceinline__ void gpu_sync() { __syncthreads(); }
template <typename T>
__device__ __forceinline__ T* gpu_dyn_shared() {
  extern __shared__ double2 dyn_shared_storage[];  // 16-byte aligned
  return reinterpret_cast<T*>(dyn_shared_storage);
}
__device__ __forceinline__ float gpu_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ float gpu_float_from_bits(uint32_t u) { return __uint_as_float(u); }
}  // namespace arwkv::gpu_lang
#else
#include "backend/cuda/emu/emu.h"
#define GPU_KERNEL
#define GPU_FN inline
#define GPU_SHARED static thread_local
#define GPU_UNROLL
namespace arwkv::gpu_lang {
inline void gpu_sync() { ::arwkv::emu::syncthreads(); }
template <typename T>
T* gpu_dyn_shared() {
  return static_cast<T*>(::arwkv::emu::context().dyn_shared);
}
inline float gpu_rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float gpu_float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace arwkv::gpu_lang
#endif
