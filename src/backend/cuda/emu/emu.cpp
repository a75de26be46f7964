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

// Fibers are entered once through ucontext (onto their own stacks) and afterwards switched with
// GCC's __builtin_setjmp/__builtin_longjmp, which save only what the compiler needs and make no
// system call (swapcontext saves the signal mask with one: most of the time of a launch). The
// functions that switch are noipa: callers must not keep values in registers the compiler has proven
// a callee leaves alone, since a switch resumes with another fiber's registers.
struct Fiber {
  void* jb[5] = {};
  ucontext_t uc{};
  char* stack = nullptr;
  Context ctx;
  bool done = false, started = false;
};

struct Scheduler {
  void* main_jb[5] = {};
  ucontext_t main_uc{};
  std::vector<Fiber> fibers;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
};

thread_local Scheduler* g_sched = nullptr;
thread_local std::vector<std::unique_ptr<char[]>> g_stacks;  // reused by every launch of this thread
thread_local Context g_flat;          // the context of a barrier-free launch
thread_local Context* g_ctx = nullptr;

[[gnu::noipa]] void jump_to(void** jb) { __builtin_longjmp(jb, 1); }

// From a fiber back to the scheduler; returns when the scheduler resumes this fiber.
[[gnu::noipa]] void yield_to_scheduler(Scheduler& s, Fiber& f) {
  if (__builtin_setjmp(f.jb) == 0) jump_to(s.main_jb);
}

// A fiber's whole life: one block's body after another, parking in between.
void fiber_main() {
  Scheduler& s = *g_sched;
  for (;;) {
    (*s.body)();
    s.current->done = true;
    yield_to_scheduler(s, *s.current);
  }
}

// Runs f until it reaches a barrier or finishes its block.
[[gnu::noipa]] void resume(Scheduler& s, Fiber& f) {
  s.current = &f;
  g_ctx = &f.ctx;
  if (__builtin_setjmp(s.main_jb) == 0) {
    if (!f.started) {
      f.started = true;
      getcontext(&f.uc);
      f.uc.uc_stack.ss_sp = f.stack;
      f.uc.uc_stack.ss_size = kStackBytes;
      f.uc.uc_link = nullptr;
      makecontext(&f.uc, fiber_main, 0);
      swapcontext(&s.main_uc, &f.uc);  // the fiber comes back through main_jb, not here
    } else {
      jump_to(f.jb);
    }
  }
}

}  // namespace

Context& context() {
  if (!g_ctx) fail("emulated CUDA: thread index read outside a kernel launch");
  return *g_ctx;
}

void syncthreads() {
  Scheduler* s = g_sched;
  if (!s || !s->current) fail("emulated CUDA: __syncthreads in a launch declared without barriers");
  yield_to_scheduler(*s, *s->current);
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
  if (g_sched) fail("emulated CUDA: a launch from inside a kernel");
  Scheduler s;
  s.body = &body;
  s.fibers.resize(n_threads);
  while (g_stacks.size() < n_threads) g_stacks.emplace_back(new char[kStackBytes]);  // not zeroed: not touched
  for (size_t t = 0; t < n_threads; ++t) s.fibers[t].stack = g_stacks[t].get();
  std::vector<size_t> order(n_threads);
  for (size_t t = 0; t < n_threads; ++t) order[t] = t;
  std::mt19937 rng(12345);
  g_sched = &s;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::fill(shared.begin(), shared.end(), char{0x5a});  // stale shared memory is garbage, not zeros
        for (size_t t = 0; t < n_threads; ++t) {
          thread_ctx(s.fibers[t].ctx, bx, by, bz, t);
          s.fibers[t].done = false;
        }
        for (size_t alive = n_threads; alive > 0;) {  // one phase: every live fiber runs to its next barrier
          std::shuffle(order.begin(), order.end(), rng);
          alive = 0;
          for (size_t t : order) {
            Fiber& f = s.fibers[t];
            if (f.done) continue;
            resume(s, f);
            if (!f.done) ++alive;
          }
        }
      }
  s.current = nullptr;
  g_sched = nullptr;
  g_ctx = saved;
}

}  // namespace arwkv::emu
