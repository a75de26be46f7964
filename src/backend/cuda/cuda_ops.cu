// The CUDA backend on the GPU: the kernels of kernels.h and wkv7_kernels.h compiled by nvcc, GEMMs
// through cuBLAS (see runtime_cuda.h).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/gpu.h"
#include "backend/op_checks.h"
#include "backend/ops.h"
#include "backend/student_op_checks.h"
#include "core/error.h"

namespace arwkv::cuda_device {
#include "backend/cuda/runtime_cuda.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/wkv7_kernels.h"
#include "backend/cuda/dequant_kernels.h"
#include "backend/cuda/cuda_ops_impl.h"
}  // namespace arwkv::cuda_device

namespace arwkv {

std::unique_ptr<Ops> make_cuda_ops() { return std::make_unique<cuda_device::GpuOps>(); }

bool cuda_available(std::string* why) {
  try {
    cuda_device::rt::init();
    if (why) *why = cuda_device::rt::device_description();
    return true;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
}

}  // namespace arwkv
