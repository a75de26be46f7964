// The scalar reference backend: plain loops with double accumulation, written to be obviously
// correct rather than fast. Every other backend is tested against it.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/ref/loss_ref.h"
#include "backend/cpu/ref/ops_backward_ref.h"
#include "backend/cpu/ref/student_backward_ref.h"
#include "backend/cpu/ref/student_ops_ref.h"
#include "backend/cpu/ref/wkv7_backward_ref.h"
#include "backend/cpu/ref/wkv7_ref.h"
#include "backend/op_checks.h"
#include "backend/student_op_checks.h"
#include "backend/ops.h"
#include "formats/quant.h"

namespace arwkv {
namespace {

namespace chk = op_checks;

void free_host(void* p) { std::free(p); }

// A weight as fp32: itself, or a compact one dequantised whole into store (formats/quant.h, the
// decoders checked against the gguf package). The reference is the tests' oracle, not fast.
Tensor as_f32(const Tensor& w, std::vector<float>& store) {
  if (w.dtype == DType::F32) return w;
  store.resize(static_cast<size_t>(w.numel()));
  const size_t row_bytes = dtype_row_bytes(w.dtype, w.cols());
  for (int64_t r = 0; r < w.rows(); ++r)
    dequantize_row(w.dtype, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * row_bytes,
                   store.data() + r * w.cols(), w.cols());
  return Tensor{store.data(), w.shape, DType::F32, w.device};
}

class ReferenceOps final : public Ops {
 public:
  const char* name() const override { return "reference"; }
  Device device() const override { return Device::CPU; }

  Buffer alloc(size_t bytes) override {
    void* p = std::calloc(bytes ? bytes : 1, 1);
    if (!p) fail("reference backend: out of memory allocating {} bytes", bytes);
    return Buffer(p, bytes, Device::CPU, free_host);
  }
  void upload(Tensor dst, const void* host_src) override { std::memcpy(dst.data, host_src, dst.nbytes()); }
  void download(void* host_dst, Tensor src) override { std::memcpy(host_dst, src.data, src.nbytes()); }

  void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias, bool accumulate) override {
    chk::matmul(Device::CPU, y, x, w, bias);
    const int64_t M = x.rows(), K = x.cols(), N = w.dim(0);
    std::vector<float> w32;
    const float *xp = x.f32(), *wp = as_f32(w, w32).f32();
    float* yp = y.f32();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = bias ? bias->f32()[n] : 0.0;
        for (int64_t k = 0; k < K; ++k) s += double{xp[m * K + k]} * wp[n * K + k];
        yp[m * N + n] = static_cast<float>(accumulate ? yp[m * N + n] + s : s);
      }
  }

  void embedding(Tensor y, Tensor table, Tensor ids) override {
    chk::embedding(Device::CPU, y, table, ids);
    const int64_t C = table.dim(1), V = table.dim(0);
    std::vector<float> t32;
    table = as_f32(table, t32);
    for (int64_t t = 0; t < ids.numel(); ++t) {
      const int32_t id = ids.i32()[t];
      if (id < 0 || id >= V) fail("embedding: token id {} outside the vocabulary of {}", id, V);
      for (int64_t c = 0; c < C; ++c) y.f32()[t * C + c] = table.f32()[id * C + c];
    }
  }

  void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) override {
    chk::rmsnorm(Device::CPU, y, x, w);
    const int64_t R = x.rows(), C = x.cols();
    for (int64_t r = 0; r < R; ++r) {
      const float* xr = x.f32() + r * C;
      double ss = 0.0;
      for (int64_t c = 0; c < C; ++c) ss += double{xr[c]} * xr[c];
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
      for (int64_t c = 0; c < C; ++c) y.f32()[r * C + c] = static_cast<float>(xr[c] * inv * w.f32()[c]);
    }
  }

  void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta, Tensor freq_factors) override {
    chk::rope(Device::CPU, x, pos, n_heads, head_dim, freq_factors);
    const int half = head_dim / 2;
    for (int64_t t = 0; t < x.rows(); ++t)
      for (int h = 0; h < n_heads; ++h) {
        float* p = x.f32() + t * x.cols() + int64_t{h} * head_dim;
        for (int i = 0; i < half; ++i) {
          const double angle = pos.i32()[t] * std::pow(double{theta}, -2.0 * i / head_dim) /
                               (chk::empty(freq_factors) ? 1.0 : double{freq_factors.f32()[i]});
          const double a = p[i], b = p[i + half];
          p[i] = static_cast<float>(a * std::cos(angle) - b * std::sin(angle));
          p[i + half] = static_cast<float>(a * std::sin(angle) + b * std::cos(angle));
        }
      }
  }

  void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start, const AttentionArgs& a) override {
    chk::attention(Device::CPU, out, q, k, v, key_start, a);
    const int64_t T = q.rows(), d = a.head_dim;
    const int group = a.n_heads / a.n_kv_heads;
    const double scale = chk::attention_scale(a);
    std::vector<double> p;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t last = a.q_offset + t;
      const int64_t first = chk::empty(key_start) ? 0 : key_start.i32()[t];
      if (first < 0 || first > last) fail("attention: key_start {} for query at {}", first, last);
      for (int h = 0; h < a.n_heads; ++h) {
        const float* qh = q.f32() + t * q.cols() + h * d;
        const int64_t kv_off = int64_t{h / group} * d;
        p.assign(static_cast<size_t>(last - first + 1), 0.0);
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = first; j <= last; ++j) {
          double s = 0.0;
          for (int64_t i = 0; i < d; ++i) s += double{qh[i]} * k.f32()[j * k.cols() + kv_off + i];
          p[static_cast<size_t>(j - first)] = s * scale;
          mx = std::max(mx, s * scale);
        }
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (int64_t i = 0; i < d; ++i) {
          double o = 0.0;
          for (int64_t j = first; j <= last; ++j) o += p[static_cast<size_t>(j - first)] * v.f32()[j * v.cols() + kv_off + i];
          out.f32()[t * out.cols() + h * d + i] = static_cast<float>(o / sum);
        }
      }
    }
  }

  void glu(Tensor y, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu", Device::CPU, y, gate, up);
    for (int64_t i = 0; i < y.numel(); ++i)
      y.f32()[i] = static_cast<float>(ref::activation(act, gate.f32()[i]) * up.f32()[i]);
  }

  void add(Tensor y, Tensor a, Tensor b) override {
    chk::same_shape("add", Device::CPU, y, a, b);
    for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = a.f32()[i] + b.f32()[i];
  }

  void copy(Tensor dst, Tensor src) override {
    if (dst.nbytes() != src.nbytes() || dst.dtype != src.dtype)
      fail("copy: {} {} into {} {}", dtype_name(src.dtype), src.shape.str(), dtype_name(dst.dtype), dst.shape.str());
    std::memmove(dst.data, src.data, src.nbytes());
  }

  void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                    Tensor reset) override {
    chk::wkv7(device(), y, state, r, w, k, v, a, b, &reset);
    ref::wkv7_forward(y, state, r, w, k, v, a, b, reset);
  }
  void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) override {
    chk::wkv7(device(), y, state, r, w, k, v, a, b, nullptr);
    ref::wkv7_decode(y, state, r, w, k, v, a, b);
  }
  void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                     Tensor a, Tensor b, Tensor reset) override {
    chk::wkv7_backward(device(), d, dy, state_in, r, w, k, v, a, b, reset);
    ref::wkv7_backward(d, dy, state_in, r, w, k, v, a, b, reset);
  }

  // Student time mixing (ops.h), in student_ops_ref.cpp.
  void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) override {
    chk::token_shift(device(), out, x, x_prev, mix, reset);
    ref::token_shift(out, x, x_prev, mix, reset);
  }
  void tanh(Tensor y, Tensor x) override {
    chk::unary("tanh", device(), y, x);
    ref::tanh(y, x);
  }
  void sigmoid(Tensor y, Tensor x) override {
    chk::unary("sigmoid", device(), y, x);
    ref::sigmoid(y, x);
  }
  void wkv7_prepare(const Wkv7PrepareArgs& a) override {
    chk::wkv7_prepare(device(), a);
    ref::wkv7_prepare(a);
  }
  void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,
                   float eps) override {
    chk::wkv7_output(device(), y, r, k, v, r_k, g, ln_w, ln_b);
    ref::wkv7_output(y, r, k, v, r_k, g, ln_w, ln_b, eps);
  }

  // Training (ops.h): backward passes, losses and optimiser steps, in ops_backward_ref.cpp, student_backward_ref.cpp and loss_ref.cpp.
  void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) override {
    chk::matmul_backward(device(), dx, dw, db, dy, x, w);
    std::vector<float> w32;
    ref::matmul_backward(dx, dw, db, dy, x, as_f32(w, w32), accumulate_dx);
  }
  void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) override {
    chk::embedding_backward(device(), dtable, dy, ids);
    ref::embedding_backward(dtable, dy, ids);
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) override {
    chk::rmsnorm_backward(device(), dx, dw, dy, x, w);
    ref::rmsnorm_backward(dx, dw, dy, x, w, eps, accumulate_dx);
  }
  void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu_backward", device(), dy, gate, up);
    chk::same_shape("glu_backward", device(), dy, dgate, dup);
    ref::glu_backward(dgate, dup, dy, gate, up, act);
  }
  void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                            Tensor reset) override {
    chk::token_shift_backward(device(), dx, dx_prev, dmix, dout, x, x_prev, mix, reset);
    ref::token_shift_backward(dx, dx_prev, dmix, dout, x, x_prev, mix, reset);
  }
  void tanh_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("tanh_backward", device(), dx, dy, y);
    ref::tanh_backward(dx, dy, y);
  }
  void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("sigmoid_backward", device(), dx, dy, y);
    ref::sigmoid_backward(dx, dy, y);
  }
  void wkv7_prepare_backward(const Wkv7PrepareArgs& fwd, const Wkv7PrepareGrads& d) override {
    chk::wkv7_prepare_backward(device(), fwd, d);
    ref::wkv7_prepare_backward(fwd, d);
  }
  void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                            Tensor ln_w, Tensor ln_b, float eps) override {
    chk::wkv7_output_backward(device(), d, y, r, k, v, r_k, g, ln_w, ln_b);
    ref::wkv7_output_backward(d, y, r, k, v, r_k, g, ln_w, ln_b, eps);
  }
  void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) override {
    chk::loss_rows("cross_entropy", device(), loss, dlogits, logits, mask);
    chk::on_device("cross_entropy", device(), targets, DType::I32);
    if (targets.numel() != logits.rows()) fail("cross_entropy: targets {} for {} rows", targets.shape.str(), logits.rows());
    ref::cross_entropy(loss, dlogits, logits, targets, mask, grad_scale);
  }
  void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
              float grad_scale) override {
    chk::loss_rows("kl_div", device(), loss, dlogits, logits, mask);
    chk::same_shape("kl_div", device(), logits, logits, teacher_logits);
    ref::kl_div(loss, dlogits, logits, teacher_logits, mask, temperature, grad_scale);
  }
  void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                   float temperature, float grad_scale) override {
    chk::loss_rows("kl_div_topk", device(), loss, dlogits, logits, mask);
    chk::on_device("kl_div_topk", device(), teacher_ids, DType::I32);
    chk::on_device("kl_div_topk", device(), teacher_logits, DType::F32);
    if (!(teacher_ids.shape == teacher_logits.shape) || teacher_ids.rows() != logits.rows())
      fail("kl_div_topk: teacher ids {} and logits {} for {} rows", teacher_ids.shape.str(),
           teacher_logits.shape.str(), logits.rows());
    ref::kl_div_topk(loss, dlogits, logits, teacher_ids, teacher_logits, mask, temperature, grad_scale);
  }
  void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) override {
    chk::loss_rows("align_loss", device(), loss, dstudent, student, mask);
    chk::same_shape("align_loss", device(), student, student, teacher);
    ref::align_loss(loss, dstudent, student, teacher, mask, grad_scale);
  }
  void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) override {
    chk::adamw_step(device(), param, grad, m, v, step);
    ref::adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
  }
  void sum_squares(Tensor acc, Tensor x) override {
    chk::on_device("sum_squares", device(), acc, DType::F32);
    chk::on_device("sum_squares", device(), x, DType::F32);
    if (acc.numel() != 1) fail("sum_squares: accumulator {} must hold one value", acc.shape.str());
    ref::sum_squares(acc, x);
  }
  void scale(Tensor x, float s) override {
    chk::on_device("scale", device(), x, DType::F32);
    ref::scale(x, s);
  }
};

}  // namespace

std::unique_ptr<Ops> make_reference_ops() { return std::make_unique<ReferenceOps>(); }

}  // namespace arwkv
