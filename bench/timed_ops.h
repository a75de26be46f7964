// An Ops that forwards every call to another backend and adds up the wall time spent in each kind
// of op, for timing breakdowns of a model forward (bench_teacher --profile). Matmuls are counted
// per weight shape, since they dominate. Only meaningful for a synchronous backend (the CPU ones),
// where a call's wall time is its cost.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "backend/ops.h"

namespace arwkv {

class TimedOps final : public Ops {
 public:
  struct Entry {
    double seconds = 0.0;
    int64_t calls = 0;
    double flops = 0.0;  // counted for matmuls only
  };

  explicit TimedOps(Ops& inner) : inner_(inner) {}

  const char* name() const override { return inner_.name(); }
  Device device() const override { return inner_.device(); }
  Buffer alloc(size_t bytes) override { return inner_.alloc(bytes); }
  void upload(Tensor dst, const void* src) override { inner_.upload(dst, src); }
  void download(void* dst, Tensor src) override { inner_.download(dst, src); }
  void synchronize() override { inner_.synchronize(); }

  void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias, bool accumulate) override {
    std::string key = fmt::format("matmul x·W[{}x{}]ᵀ", w.rows(), w.cols());
    double flops = 2.0 * static_cast<double>(x.rows()) * static_cast<double>(w.numel());
    timed(key, flops, [&] { inner_.matmul(y, x, w, bias, accumulate); });
  }
  void embedding(Tensor y, Tensor table, Tensor ids) override {
    timed("embedding", 0, [&] { inner_.embedding(y, table, ids); });
  }
  void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) override {
    timed("rmsnorm", 0, [&] { inner_.rmsnorm(y, x, w, eps); });
  }
  void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta) override {
    timed("rope", 0, [&] { inner_.rope(x, pos, n_heads, head_dim, theta); });
  }
  void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start,
                 const AttentionArgs& args) override {
    timed("attention", 0, [&] { inner_.attention(out, q, k, v, key_start, args); });
  }
  void silu_mul(Tensor y, Tensor gate, Tensor up) override {
    timed("silu_mul", 0, [&] { inner_.silu_mul(y, gate, up); });
  }
  void add(Tensor y, Tensor a, Tensor b) override {
    timed("add", 0, [&] { inner_.add(y, a, b); });
  }
  void copy(Tensor dst, Tensor src) override {
    timed("copy", 0, [&] { inner_.copy(dst, src); });
  }
  void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                    Tensor reset) override {
    timed("wkv7_forward", 0, [&] { inner_.wkv7_forward(y, state, r, w, k, v, a, b, reset); });
  }
  void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) override {
    timed("wkv7_decode", 0, [&] { inner_.wkv7_decode(y, state, r, w, k, v, a, b); });
  }
  void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                     Tensor a, Tensor b, Tensor reset) override {
    timed("wkv7_backward", 0, [&] { inner_.wkv7_backward(d, dy, state_in, r, w, k, v, a, b, reset); });
  }
  void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) override {
    timed("token_shift", 0, [&] { inner_.token_shift(out, x, x_prev, mix, reset); });
  }
  void tanh(Tensor y, Tensor x) override {
    timed("tanh", 0, [&] { inner_.tanh(y, x); });
  }
  void sigmoid(Tensor y, Tensor x) override {
    timed("sigmoid", 0, [&] { inner_.sigmoid(y, x); });
  }
  void wkv7_prepare(const Wkv7PrepareArgs& args) override {
    timed("wkv7_prepare", 0, [&] { inner_.wkv7_prepare(args); });
  }
  void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,
                   float eps) override {
    timed("wkv7_output", 0, [&] { inner_.wkv7_output(y, r, k, v, r_k, g, ln_w, ln_b, eps); });
  }

  void reset() { entries_.clear(); }
  const std::map<std::string, Entry>& entries() const { return entries_; }

  // One line per op kind, largest first, with its share of total_seconds (the whole forward, so
  // the time spent outside the ops shows as the remainder).
  void print(std::FILE* out, double total_seconds) const {
    std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    double in_ops = 0.0;
    for (const auto& [key, e] : rows) {
      in_ops += e.seconds;
      std::string rate = e.flops > 0 ? fmt::format("{:8.1f} GFLOP/s", e.flops / e.seconds / 1e9) : "";
      fmt::print(out, "  {:<28} {:9.2f} ms {:5.1f}% {:7} calls {}\n", key, e.seconds * 1e3,
                 100.0 * e.seconds / total_seconds, e.calls, rate);
    }
    fmt::print(out, "  {:<28} {:9.2f} ms {:5.1f}%\n", "(outside ops)", (total_seconds - in_ops) * 1e3,
               100.0 * (total_seconds - in_ops) / total_seconds);
  }

 private:
  template <typename F>
  void timed(const std::string& key, double flops, F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    Entry& e = entries_[key];
    e.seconds += dt.count();
    e.calls += 1;
    e.flops += flops;
  }

  Ops& inner_;
  std::map<std::string, Entry> entries_;
};

}  // namespace arwkv
