// Backends by name, and the stand-ins for the CUDA backend in a build without it.
#include "backend/ops.h"

#include <fmt/format.h>

#include "core/error.h"

namespace arwkv {

#ifndef ARWKV_HAVE_CUDA
std::unique_ptr<Ops> make_cuda_ops() {
  fail("the cuda backend is not in this build: configure with nvcc on the PATH (or -DARWKV_CUDA=ON)");
}
bool cuda_available(std::string* why) {
  if (why) *why = "this build has no CUDA backend (nvcc was not found when it was configured)";
  return false;
}
#endif

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names = {"cpu", "cuda", "reference", "cuda-emulated"};
  return names;
}

std::unique_ptr<Ops> make_ops(const std::string& name) {
  if (name == "cpu") return make_cpu_ops();
  if (name == "reference") return make_reference_ops();
  if (name == "cuda") return make_cuda_ops();
  if (name == "cuda-emulated") return make_cuda_emulated_ops();
  fail("unknown backend '{}' ({})", name, fmt::join(backend_names(), ", "));
}

}  // namespace arwkv
