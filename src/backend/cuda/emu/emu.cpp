// The fiber scheduler of the CUDA emulation (see emu.h).
#include "backend/cuda/emu/emu.h"

#include <ucontext.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "core/error.h"

namespace arwkv::emu {
namespace {

constexpr size_t kStackBytes = 256 * 1024;

struct Fiber {
  ucontext_t uc{};
  std::unique_ptr<char[]> stack;
  Context ctx;
  bool done = false;
};

struct Scheduler {
  ucontext_t main{};
  std::vector<Fiber> fibers;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
  std::vector<char> shared;
};

thread_local Scheduler* g_sched = nullptr;
thread_local Context g_flat;          // the context of a barrier-free launch
thread_local Context* g_ctx = nullptr;

void fiber_main();

// Kept out of launch(): getcontext returns twice, like setjmp.
[[gnu::noinline]] void init_fiber(Fiber& f) {
  f.done = false;
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack.get();
  f.uc.uc_stack.ss_size = kStackBytes;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, fiber_main, 0);
}

void fiber_main() {
  Scheduler& s = *g_sched;
  (*s.body)();
  s.current->done = true;
  swapcontext(&s.current->uc, &s.main);
}

}  // namespace

Context& context() {
  if (!g_ctx) fail("emulated CUDA: thread index read outside a kernel launch");
  return *g_ctx;
}

void syncthreads() {
  Scheduler* s = g_sched;
  if (!s || !s->current) fail("emulated CUDA: __syncthreads in a launch declared without barriers");
  swapcontext(&s->current->uc, &s->main);
  g_ctx = &s->current->ctx;
}

void launch(Dim grid, Dim block, size_t dyn_shared_bytes, bool barriers, const std::function<void()>& body) {
  const size_t n_threads = size_t{block.x} * block.y * block.z;
  if (n_threads == 0 || n_threads > 1024) fail("emulated CUDA: block of {} threads", n_threads);
  std::vector<char> shared(std::max<size_t>(dyn_shared_bytes, 16) + 64);
  void* dyn = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(shared.data()) + 63) & ~uintptr_t{63});
  Context* saved = g_ctx;
  auto thread_ctx = [&](Context& c, unsigned bx, unsigned by, unsigned bz, size_t t) {
    c.block = Dim{bx, by, bz};
    c.thread = Dim{static_cast<unsigned>(t % block.x), static_cast<unsigned>(t / block.x % block.y),
                   static_cast<unsigned>(t / (size_t{block.x} * block.y))};
    c.block_dim = block;
    c.grid_dim = grid;
    c.dyn_shared = dyn;
  };
  if (!barriers) {
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx)
          for (size_t t = 0; t < n_threads; ++t) {
            thread_ctx(g_flat, bx, by, bz, t);
            g_ctx = &g_flat;
            body();
          }
    g_ctx = saved;
    return;
  }
  Scheduler s;
  s.body = &body;
  s.fibers.resize(n_threads);
  for (Fiber& f : s.fibers) f.stack = std::make_unique<char[]>(kStackBytes);
  std::vector<size_t> order(n_threads);
  std::mt19937 rng(12345);
  Scheduler* outer = g_sched;
  g_sched = &s;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::fill(shared.begin(), shared.end(), char{0x5a});  // stale shared memory is garbage, not zeros
        for (size_t t = 0; t < n_threads; ++t) {
          Fiber& f = s.fibers[t];
          thread_ctx(f.ctx, bx, by, bz, t);
          init_fiber(f);
        }
        for (size_t alive = n_threads; alive > 0;) {  // one phase: every live fiber runs to its next barrier
          for (size_t t = 0; t < n_threads; ++t) order[t] = t;
          std::shuffle(order.begin(), order.end(), rng);
          alive = 0;
          for (size_t t : order) {
            Fiber& f = s.fibers[t];
            if (f.done) continue;
            s.current = &f;
            g_ctx = &f.ctx;
            swapcontext(&s.main, &f.uc);
            if (!f.done) ++alive;
          }
        }
      }
  s.current = nullptr;
  g_sched = outer;
  g_ctx = saved;
}

}  // namespace arwkv::emu
