// Speed of the WKV-7 kernels, the scalar reference and the fast CPU form side by side:
//   forward/<backend>/C:<C>/T:<T>   one wkv7_forward of B = 1 sequence of T tokens (tokens/s)
//   decode/<backend>/C:<C>          one wkv7_decode step of B = 1 (steps/s); one layer's worth
//   fwd_bwd/<backend>/C:<C>/T:<T>   a training step's WKV-7: wkv7_forward, then wkv7_backward from the
//                                   saved initial state (the backward recomputes the forward inside)
// Inputs are shaped as the model makes them (a = −kk, b = kk ⊙ iclr, decays in [0.545, 1)).
// Threads: the CPU backend's OpenMP pool (OMP_NUM_THREADS).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/ops.h"

namespace arwkv {
namespace {

constexpr int64_t kN = 64;

struct Workload {
  std::vector<float> r, w, k, v, a, b, y, state;
  Tensor tr, tw, tk, tv, ta, tb, ty, tstate;

  // T = 0: one token per sequence, as decode takes it ([B, C]).
  Workload(int64_t B, int64_t T, int64_t C) {
    const size_t n = static_cast<size_t>(B * std::max<int64_t>(T, 1) * C);
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f), u01(0.0f, 1.0f);
    for (auto* x : {&r, &w, &k, &v, &a, &b, &y}) x->resize(n);
    for (size_t i = 0; i < n; ++i) {
      r[i] = u(rng), k[i] = u(rng), v[i] = u(rng);
      w[i] = std::exp(-0.606531f * u01(rng));
      a[i] = u(rng) / std::sqrt(static_cast<float>(kN));  // about unit length per head
      b[i] = -a[i] * u01(rng);
    }
    state.assign(static_cast<size_t>(B * C * kN), 0.0f);
    const Shape s = T ? Shape{B, T, C} : Shape{B, C};
    auto view = [&](std::vector<float>& x) { return Tensor{x.data(), s, DType::F32, Device::CPU}; };
    tr = view(r), tw = view(w), tk = view(k), tv = view(v), ta = view(a), tb = view(b), ty = view(y);
    tstate = Tensor{state.data(), Shape{B, C / kN, kN, kN}, DType::F32, Device::CPU};
  }
};

std::unique_ptr<Ops> make_ops(bool fast) { return fast ? make_cpu_ops() : make_reference_ops(); }

void forward(benchmark::State& st, bool fast, int64_t C, int64_t T) {
  auto ops = make_ops(fast);
  Workload wl(1, T, C);
  for (auto _ : st) {
    ops->wkv7_forward(wl.ty, wl.tstate, wl.tr, wl.tw, wl.tk, wl.tv, wl.ta, wl.tb, Tensor{});
    benchmark::DoNotOptimize(wl.y.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(st.iterations() * T), benchmark::Counter::kIsRate);
}

void decode(benchmark::State& st, bool fast, int64_t C) {
  auto ops = make_ops(fast);
  Workload wl(1, 0, C);
  for (auto _ : st) {
    ops->wkv7_decode(wl.ty, wl.tstate, wl.tr, wl.tw, wl.tk, wl.tv, wl.ta, wl.tb);
    benchmark::DoNotOptimize(wl.y.data());
  }
  st.counters["steps/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

void forward_backward(benchmark::State& st, bool fast, int64_t C, int64_t T) {
  auto ops = make_ops(fast);
  Workload wl(1, T, C);
  const std::vector<float> state_in = wl.state;
  const size_t n = wl.y.size();
  std::vector<float> dy(n, 0.01f), g(6 * n), dstate(wl.state.size());
  auto view = [&](float* p) { return Tensor{p, wl.ty.shape, DType::F32, Device::CPU}; };
  const Tensor tin{const_cast<float*>(state_in.data()), wl.tstate.shape, DType::F32, Device::CPU};
  const Wkv7Grads d{view(g.data()),         view(g.data() + n),     view(g.data() + 2 * n),
                    view(g.data() + 3 * n), view(g.data() + 4 * n), view(g.data() + 5 * n),
                    Tensor{dstate.data(), wl.tstate.shape, DType::F32, Device::CPU}};
  for (auto _ : st) {
    std::copy(state_in.begin(), state_in.end(), wl.state.begin());
    ops->wkv7_forward(wl.ty, wl.tstate, wl.tr, wl.tw, wl.tk, wl.tv, wl.ta, wl.tb, Tensor{});
    std::fill(dstate.begin(), dstate.end(), 0.0f);
    ops->wkv7_backward(d, view(dy.data()), tin, wl.tr, wl.tw, wl.tk, wl.tv, wl.ta, wl.tb, Tensor{});
    benchmark::DoNotOptimize(g.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(st.iterations() * T), benchmark::Counter::kIsRate);
}

void register_all() {
  for (bool fast : {false, true}) {
    const std::string be = fast ? "cpu" : "reference";
    for (int64_t C : {576, 896}) {
      const std::string c = "/C:" + std::to_string(C);
      benchmark::RegisterBenchmark(("forward/" + be + c + "/T:1024").c_str(), forward, fast, C, int64_t{1024})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("decode/" + be + c).c_str(), decode, fast, C)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      if (C == 576)
        benchmark::RegisterBenchmark(("fwd_bwd/" + be + c + "/T:1024").c_str(), forward_backward, fast, C, int64_t{1024})
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  arwkv::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
