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
  void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta, Tensor freq_factors) override {
    timed("rope", 0, [&] { inner_.rope(x, pos, n_heads, head_dim, theta, freq_factors); });
  }
  void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start,
                 const AttentionArgs& args) override {
    timed("attention", 0, [&] { inner_.attention(out, q, k, v, key_start, args); });
  }
  void glu(Tensor y, Tensor gate, Tensor up, Activation act) override {
    timed("glu", 0, [&] { inner_.glu(y, gate, up, act); });
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
  void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) override {
    std::string key = fmt::format("matmul_backward W[{}x{}]", w.rows(), w.cols());
    double flops = 2.0 * static_cast<double>(dy.rows()) * static_cast<double>(w.numel()) *
                   ((dx.data ? 1 : 0) + (dw.data ? 1 : 0));
    timed(key, flops, [&] { inner_.matmul_backward(dx, dw, db, dy, x, w, accumulate_dx); });
  }
  void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) override {
    timed("embedding_backward", 0, [&] { inner_.embedding_backward(dtable, dy, ids); });
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) override {
    timed("rmsnorm_backward", 0, [&] { inner_.rmsnorm_backward(dx, dw, dy, x, w, eps, accumulate_dx); });
  }
  void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) override {
    timed("glu_backward", 0, [&] { inner_.glu_backward(dgate, dup, dy, gate, up, act); });
  }
  void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                            Tensor reset) override {
    timed("token_shift_backward", 0, [&] { inner_.token_shift_backward(dx, dx_prev, dmix, dout, x, x_prev, mix, reset); });
  }
  void tanh_backward(Tensor dx, Tensor dy, Tensor y) override {
    timed("tanh_backward", 0, [&] { inner_.tanh_backward(dx, dy, y); });
  }
  void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) override {
    timed("sigmoid_backward", 0, [&] { inner_.sigmoid_backward(dx, dy, y); });
  }
  void wkv7_prepare_backward(const Wkv7PrepareArgs& fwd, const Wkv7PrepareGrads& d) override {
    timed("wkv7_prepare_backward", 0, [&] { inner_.wkv7_prepare_backward(fwd, d); });
  }
  void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                            Tensor ln_w, Tensor ln_b, float eps) override {
    timed("wkv7_output_backward", 0, [&] { inner_.wkv7_output_backward(d, y, r, k, v, r_k, g, ln_w, ln_b, eps); });
  }
  void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) override {
    timed("cross_entropy", 0, [&] { inner_.cross_entropy(loss, dlogits, logits, targets, mask, grad_scale); });
  }
  void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
              float grad_scale) override {
    timed("kl_div", 0, [&] { inner_.kl_div(loss, dlogits, logits, teacher_logits, mask, temperature, grad_scale); });
  }
  void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                   float temperature, float grad_scale) override {
    timed("kl_div_topk", 0, [&] {
      inner_.kl_div_topk(loss, dlogits, logits, teacher_ids, teacher_logits, mask, temperature, grad_scale);
    });
  }
  void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) override {
    timed("align_loss", 0, [&] { inner_.align_loss(loss, dstudent, student, teacher, mask, grad_scale); });
  }
  void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) override {
    timed("adamw_step", 0, [&] { inner_.adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step); });
  }
  void sum_squares(Tensor acc, Tensor x) override {
    timed("sum_squares", 0, [&] { inner_.sum_squares(acc, x); });
  }
  void scale(Tensor x, float s) override {
    timed("scale", 0, [&] { inner_.scale(x, s); });
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
