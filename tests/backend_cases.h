// Every backend a parameterised test runs on: the reference, the CPU backend, the CUDA kernels
// through the emulation, and the GPU when there is one.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"

namespace arwkv::test {

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
};

inline std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{{"reference", make_reference_ops}, {"cpu", make_cpu_ops},
                               {"cuda_emulated", make_cuda_emulated_ops}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops});
  return out;
}

}  // namespace arwkv::test
