// The CUDA backend's speed on a GPU (or, with --backend cuda-emulated and small shapes, a check that
// this program itself works anywhere):
//   - WKV-7 forward + backward for B sequences of T tokens, C channels, N = 64 (the issue's
//     B=8, T=4096, C=4096 by default), timed with a device synchronisation around each repetition,
//     beside the memory-traffic floor of that work at --bandwidth GB/s: 20 [B, T, C] tensors
//     (forward: r w k v a b in, y out; backward: those six and dy in, six gradients out) in bf16;
//   - wkv7_decode: one token for batch 1 and batch 64 (one layer's recurrence);
//   - GEMMs: x[M, K]·w[N, K]ᵀ at a transformer's shapes, TFLOP/s.
// Each line names the device. Medians over --reps repetitions after one warm-up.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "backend/ops.h"

namespace arwkv {
namespace {

struct Options {
  std::string backend = "cuda";
  int64_t B = 8, T = 4096, C = 4096;
  int reps = 5;
  double bandwidth_gbs = 3350.0;  // H100 SXM HBM3; H200: 4800
};

double median_seconds(Ops& ops, int reps, const std::function<void()>& f) {
  f();
  ops.synchronize();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ops.synchronize();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct DevTensor {
  Buffer buf;
  Tensor t;
  DevTensor(Ops& ops, Shape s, const std::vector<float>& host) {
    buf = ops.alloc(static_cast<size_t>(s.numel()) * sizeof(float));
    t = Tensor{buf.data(), s, DType::F32, ops.device()};
    if (!host.empty()) ops.upload(t, host.data());
  }
};

// Inputs shaped as the model makes them: decays in [0.545, 1), a = −kk, b = kk ⊙ iclr.
std::vector<std::vector<float>> wkv_inputs(int64_t n, int64_t N, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), u01(0.0f, 1.0f);
  std::vector<std::vector<float>> x(6, std::vector<float>(static_cast<size_t>(n)));
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    x[0][i] = u(rng), x[2][i] = u(rng), x[3][i] = u(rng);
    x[1][i] = std::exp(-0.606531f * u01(rng));
    x[4][i] = u(rng) / std::sqrt(static_cast<float>(N));
    x[5][i] = -x[4][i] * u01(rng);
  }
  return x;
}

int run(const Options& o) {
  std::string device = o.backend;
  if (o.backend == "cuda" && !cuda_available(&device)) {
    fmt::print("bench_cuda: skipped: {}\n", device);
    return 0;
  }
  auto ops = make_ops(o.backend);
  const int64_t N = 64, H = o.C / N;
  fmt::print("device: {}\n\n", device);

  {  // WKV-7 forward + backward
    const Shape btc{o.B, o.T, o.C}, st{o.B, H, N, N};
    const auto in = wkv_inputs(o.B * o.T * o.C, N, 1);
    std::vector<DevTensor> x;
    for (const auto& v : in) x.emplace_back(*ops, btc, v);
    DevTensor y(*ops, btc, {}), dy(*ops, btc, in[0]), s0(*ops, st, {}), s(*ops, st, {}), ds(*ops, st, {});
    std::vector<DevTensor> g;
    for (int q = 0; q < 6; ++q) g.emplace_back(*ops, btc, std::vector<float>{});
    const Wkv7Grads grads{.dr = g[0].t, .dw = g[1].t, .dk = g[2].t, .dv = g[3].t, .da = g[4].t, .db = g[5].t, .dstate = ds.t};
    auto fwd = [&] { ops->wkv7_forward(y.t, s.t, x[0].t, x[1].t, x[2].t, x[3].t, x[4].t, x[5].t, Tensor{}); };
    auto bwd = [&] { ops->wkv7_backward(grads, dy.t, s0.t, x[0].t, x[1].t, x[2].t, x[3].t, x[4].t, x[5].t, Tensor{}); };
    const double t_fwd = median_seconds(*ops, o.reps, fwd), t_bwd = median_seconds(*ops, o.reps, bwd);
    const double floor_s = 20.0 * static_cast<double>(o.B * o.T * o.C) * 2.0 / (o.bandwidth_gbs * 1e9);
    fmt::print("| WKV-7 B={} T={} C={} N={} | ms |\n|---|---|\n", o.B, o.T, o.C, N);
    fmt::print("| forward | {:.3f} |\n| backward (recomputes the forward) | {:.3f} |\n", t_fwd * 1e3, t_bwd * 1e3);
    fmt::print("| forward + backward | {:.3f} |\n| memory-traffic floor at {:.0f} GB/s (bf16) | {:.3f} |\n",
               (t_fwd + t_bwd) * 1e3, o.bandwidth_gbs, floor_s * 1e3);
    fmt::print("| ratio to the floor | {:.1f}x |\n\n", (t_fwd + t_bwd) / floor_s);
  }
  {  // one decode step of one layer's recurrence
    fmt::print("| wkv7_decode C={} | us per step | tokens/s |\n|---|---|---|\n", o.C);
    for (int64_t B : {int64_t{1}, int64_t{64}}) {
      const Shape bc{B, o.C}, st{B, H, N, N};
      const auto in = wkv_inputs(B * o.C, N, 2);
      std::vector<DevTensor> x;
      for (const auto& v : in) x.emplace_back(*ops, bc, v);
      DevTensor y(*ops, bc, {}), s(*ops, st, {});
      const double t = median_seconds(*ops, o.reps * 20, [&] {
        ops->wkv7_decode(y.t, s.t, x[0].t, x[1].t, x[2].t, x[3].t, x[4].t, x[5].t);
      });
      fmt::print("| batch {} | {:.1f} | {:.0f} |\n", B, t * 1e6, B / t);
    }
    fmt::print("\n");
  }
  {  // GEMMs at the shapes of a 0.5B model's projections for 8192 tokens
    fmt::print("| matmul M x N x K | ms | TFLOP/s |\n|---|---|---|\n");
    const int64_t M = std::min<int64_t>(8192, o.B * o.T);
    for (auto [Nn, K] : {std::pair<int64_t, int64_t>{896, 896}, {4864, 896}, {896, 4864}}) {
      DevTensor x(*ops, Shape{M, K}, std::vector<float>(static_cast<size_t>(M * K), 0.01f));
      DevTensor w(*ops, Shape{Nn, K}, std::vector<float>(static_cast<size_t>(Nn * K), 0.02f));
      DevTensor y(*ops, Shape{M, Nn}, {});
      const double t = median_seconds(*ops, o.reps, [&] { ops->matmul(y.t, x.t, w.t); });
      fmt::print("| {} x {} x {} | {:.3f} | {:.1f} |\n", M, Nn, K, t * 1e3, 2.0 * M * Nn * K / t / 1e12);
    }
  }
  return 0;
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options o;
  CLI::App app{"Speed of the CUDA backend's kernels: WKV-7 forward+backward, decode, GEMMs"};
  app.add_option("--backend", o.backend, "cuda, or cuda-emulated (with small shapes) to check this program");
  app.add_option("-B", o.B, "sequences")->capture_default_str();
  app.add_option("-T", o.T, "tokens per sequence")->capture_default_str();
  app.add_option("-C", o.C, "channels (heads of 64)")->capture_default_str();
  app.add_option("--reps", o.reps, "timed repetitions")->capture_default_str();
  app.add_option("--bandwidth", o.bandwidth_gbs, "memory bandwidth for the floor, GB/s (H100 3350, H200 4800)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return arwkv::run(o);
  } catch (const arwkv::Error& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
}
