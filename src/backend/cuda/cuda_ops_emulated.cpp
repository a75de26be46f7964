// The CUDA backend compiled for the CPU emulation of the CUDA execution model: the same kernels and
// Ops as on the GPU, run here so that the tests check them on every machine.
#include <cblas.h>

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

namespace arwkv::cuda_emulated {
#include "backend/cuda/runtime_emulated.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/wkv7_kernels.h"
#include "backend/cuda/dequant_kernels.h"
#include "backend/cuda/cuda_ops_impl.h"
}  // namespace arwkv::cuda_emulated

namespace arwkv {

std::unique_ptr<Ops> make_cuda_emulated_ops() { return std::make_unique<cuda_emulated::GpuOps>(); }

}  // namespace arwkv
