// A CPU emulation of the CUDA execution model, so the CUDA backend's kernels run (and are tested)
// on machines without a GPU. Kernels are ordinary functions here; a launch runs every thread of a
// block as a fiber (ucontext) on one OS thread, and __syncthreads switches to the next fiber, so a
// block's threads really do stop at a barrier until all of them reach it. Between two barriers the
// fibers run in a shuffled order each phase, so a missing barrier shows up as a wrong result rather
// than being hidden by a lucky order. Shared memory is per OS thread (blocks run one after another),
// atomics are real atomics. What is not emulated: warps (no shuffles or votes: the kernels use none),
// timing, and the memory model beyond "a barrier makes earlier writes visible".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace arwkv::emu {

struct Dim {
  unsigned x = 1, y = 1, z = 1;
};

struct Context {
  Dim thread, block, block_dim, grid_dim;
  void* dyn_shared = nullptr;
};

// The running thread's indices (valid inside a launch).
Context& context();
// The block barrier.
void syncthreads();

// Runs body once per thread of every block; `barriers` false promises the kernel never calls
// syncthreads, which lets the threads run as a plain loop instead of fibers.
void launch(Dim grid, Dim block, size_t dyn_shared_bytes, bool barriers, const std::function<void()>& body);

}  // namespace arwkv::emu

// The CUDA names a kernel uses, for code compiled by the host compiler.
#define threadIdx (::arwkv::emu::context().thread)
#define blockIdx (::arwkv::emu::context().block)
#define blockDim (::arwkv::emu::context().block_dim)
#define gridDim (::arwkv::emu::context().grid_dim)

inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
