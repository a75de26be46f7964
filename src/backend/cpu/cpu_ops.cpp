// The fast CPU backend: OpenBLAS for matrix products, OpenMP for everything else.
//
// Threads: Debian's OpenBLAS is the pthreads build, whose own thread pool would fight OpenMP's for
// the same cores (OpenMP workers spin for a while after each parallel region). So OpenBLAS is set to
// one thread and matmul splits the output columns over OpenMP threads itself, each calling
// single-threaded sgemm/sgemv on its slice: one pool, no oversubscription. OMP_NUM_THREADS sets it.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "backend/cpu/compact.h"
#include "backend/cpu/loss.h"
#include "backend/cpu/ops_backward.h"
#include "backend/cpu/optim.h"
#include "backend/cpu/student_backward.h"
#include "backend/cpu/student_ops.h"
#include "backend/cpu/wkv7_backward.h"
#include "backend/cpu/wkv7.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/vec_math.h"
#include "backend/op_checks.h"
#include "backend/student_op_checks.h"
#include "backend/ops.h"

namespace arwkv {
namespace {

namespace chk = op_checks;

constexpr int64_t kParallelMin = 1 << 14;  // element-wise ops on fewer elements stay on one thread
constexpr size_t kAlign = 64;

void free_host(void* p) { std::free(p); }

// y[M, N] (ld ldy) = x[M, K]·w[N, K]ᵀ + beta·y on one thread.
void gemm_slice(int64_t M, int64_t N, int64_t K, const float* x, const float* w, float beta, float* y, int64_t ldy) {
  if (N <= 0) return;
  if (M == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(N), static_cast<int>(K), 1.0f, w,
                static_cast<int>(K), x, 1, beta, y, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, x, static_cast<int>(K), w, static_cast<int>(K), beta, y,
                static_cast<int>(ldy));
}

class CpuOps final : public Ops {
 public:
  CpuOps() {
    static std::once_flag once;
    std::call_once(once, [] { openblas_set_num_threads(1); });
  }
  const char* name() const override { return "cpu"; }
  Device device() const override { return Device::CPU; }

  Buffer alloc(size_t bytes) override {
    const size_t n = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, n);
    if (!p) fail("cpu backend: out of memory allocating {} bytes", bytes);
    std::memset(p, 0, n);
    return Buffer(p, bytes, Device::CPU, free_host);
  }
  void upload(Tensor dst, const void* host_src) override { std::memcpy(dst.data, host_src, dst.nbytes()); }
  void download(void* host_dst, Tensor src) override { std::memcpy(host_dst, src.data, src.nbytes()); }

  void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias, bool accumulate) override {
    chk::matmul(Device::CPU, y, x, w, bias);
    const int64_t M = x.rows(), K = x.cols(), N = w.dim(0);
    const int nt = omp_in_parallel() ? 1 : cpu::max_threads();
    if (w.dtype != DType::F32) return matmul_compact(y, x, w, bias, accumulate, nt);
    const float *xp = x.f32(), *wp = w.f32(), *bp = bias ? bias->f32() : nullptr;
    float* yp = y.f32();
    const bool split_n = N >= 64 * nt || M < 4 * nt;
#pragma omp parallel num_threads(nt) if (nt > 1 && M * N * K > (1 << 16))
    {
      const int n_thr = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t parts = split_n ? N : M;
      const int64_t step = split_n ? ((parts + n_thr - 1) / n_thr + 15) & ~int64_t{15} : (parts + n_thr - 1) / n_thr;
      const int64_t b = std::min(parts, id * step), e = std::min(parts, b + step);
      const int64_t m0 = split_n ? 0 : b, m1 = split_n ? M : e;
      const int64_t n0 = split_n ? b : 0, n1 = split_n ? e : N;
      if (bp)
        for (int64_t m = m0; m < m1; ++m)
          for (int64_t n = n0; n < n1; ++n) yp[m * N + n] = (accumulate ? yp[m * N + n] : 0.0f) + bp[n];
      const float beta = bp || accumulate ? 1.0f : 0.0f;
      if (m1 > m0) gemm_slice(m1 - m0, n1 - n0, K, xp + m0 * K, wp + n0 * K, beta, yp + m0 * N + n0, N);
    }
  }

  void embedding(Tensor y, Tensor table, Tensor ids) override {
    chk::embedding(Device::CPU, y, table, ids);
    const int64_t C = table.dim(1), V = table.dim(0);
    for (int64_t t = 0; t < ids.numel(); ++t)
      if (ids.i32()[t] < 0 || ids.i32()[t] >= V)
        fail("embedding: token id {} outside the vocabulary of {}", ids.i32()[t], V);
    if (table.dtype != DType::F32) return cpu::embedding_compact(y.f32(), table, ids.i32(), ids.numel());
    for (int64_t t = 0; t < ids.numel(); ++t) {
      const int32_t id = ids.i32()[t];
      std::memcpy(y.f32() + t * C, table.f32() + id * C, static_cast<size_t>(C) * sizeof(float));
    }
  }

  void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) override {
    chk::rmsnorm(Device::CPU, y, x, w);
    const int64_t R = x.rows(), C = x.cols();
    const float *xp = x.f32(), *wp = w.f32();
    float* yp = y.f32();
#pragma omp parallel for if (R > 1 && R * C >= kParallelMin)
    for (int64_t r = 0; r < R; ++r) {
      const float* xr = xp + r * C;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yp[r * C + c] = xr[c] * inv * wp[c];
    }
  }

  // The angles depend on the position and the pair only, so cos/sin are computed once per row
  // (in double, from the exact angle) and applied to every head.
  void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta, Tensor freq_factors) override {
    chk::rope(Device::CPU, x, pos, n_heads, head_dim, freq_factors);
    const int64_t T = x.rows(), half = head_dim / 2;
    float* table = scratch(static_cast<size_t>(T * half * 2));
    float* xp = x.f32();
    const int32_t* pp = pos.i32();
    const float* ff = chk::empty(freq_factors) ? nullptr : freq_factors.f32();
#pragma omp parallel for if (T * n_heads * head_dim >= kParallelMin)
    for (int64_t t = 0; t < T; ++t) {
      float* cs = table + t * half * 2;
      for (int64_t i = 0; i < half; ++i) {
        double angle = pp[t] * std::pow(double{theta}, -2.0 * static_cast<double>(i) / head_dim);
        if (ff) angle /= ff[i];
        cs[i] = static_cast<float>(std::cos(angle));
        cs[half + i] = static_cast<float>(std::sin(angle));
      }
      for (int h = 0; h < n_heads; ++h) {
        float* p = xp + t * x.cols() + int64_t{h} * head_dim;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const float a = p[i], b = p[i + half];
          p[i] = a * cs[i] - b * cs[half + i];
          p[i + half] = a * cs[half + i] + b * cs[i];
        }
      }
    }
  }

  void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start, const AttentionArgs& a) override {
    chk::attention(Device::CPU, out, q, k, v, key_start, a);
    const int32_t* ks = chk::empty(key_start) ? nullptr : key_start.i32();
    for (int64_t t = 0; ks && t < q.rows(); ++t)
      if (ks[t] < 0 || ks[t] > a.q_offset + t)
        fail("attention: key_start {} for query at {}", ks[t], a.q_offset + t);
    float* s = scratch(static_cast<size_t>(cpu::max_threads() * (k.rows() + a.head_dim)));
    cpu::attention(out, q, k, v, ks, a, s);
  }

  void glu(Tensor y, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu", Device::CPU, y, gate, up);
    const int64_t n = y.numel();
    const float *g = gate.f32(), *u = up.f32();
    float* yp = y.f32();
    if (act == Activation::Silu) {
#pragma omp parallel for simd if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) yp[i] = cpu::silu(g[i]) * u[i];
    } else {
#pragma omp parallel for simd if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) yp[i] = cpu::gelu_tanh(g[i]) * u[i];
    }
  }

  void add(Tensor y, Tensor a, Tensor b) override {
    chk::same_shape("add", Device::CPU, y, a, b);
    const int64_t n = y.numel();
    const float *ap = a.f32(), *bp = b.f32();
    float* yp = y.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) yp[i] = ap[i] + bp[i];
  }

  void copy(Tensor dst, Tensor src) override {
    if (dst.nbytes() != src.nbytes() || dst.dtype != src.dtype)
      fail("copy: {} {} into {} {}", dtype_name(src.dtype), src.shape.str(), dtype_name(dst.dtype), dst.shape.str());
    std::memmove(dst.data, src.data, src.nbytes());
  }

 private:
  // matmul with a compact weight: bias first, then tiles of dequantised rows (backend/cpu/compact.h).
  static void matmul_compact(Tensor y, Tensor x, Tensor w, const Tensor* bias, bool accumulate, int nt) {
    const int64_t M = x.rows(), K = x.cols(), N = w.dim(0);
    float* yp = y.f32();
    if (bias)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) yp[m * N + n] = (accumulate ? yp[m * N + n] : 0.0f) + bias->f32()[n];
    cpu::matmul_compact(M, N, K, x.f32(), w, bias || accumulate ? 1.0f : 0.0f, yp, nt);
  }

  // Scratch that grows to the largest request and is then reused: no allocation in steady state.
  float* scratch(size_t n) {
    if (scratch_.size() < n) scratch_.resize(n);
    return scratch_.data();
  }
  std::vector<float> scratch_;

  void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                    Tensor reset) override {
    chk::wkv7(device(), y, state, r, w, k, v, a, b, &reset);
    cpu::wkv7_forward(y, state, r, w, k, v, a, b, reset);
  }
  void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) override {
    chk::wkv7(device(), y, state, r, w, k, v, a, b, nullptr);
    cpu::wkv7_decode(y, state, r, w, k, v, a, b);
  }
  void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                     Tensor a, Tensor b, Tensor reset) override {
    chk::wkv7_backward(device(), d, dy, state_in, r, w, k, v, a, b, reset);
    cpu::wkv7_backward(d, dy, state_in, r, w, k, v, a, b, reset);
  }

  // Student time mixing (ops.h), in student_ops.cpp.
  void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) override {
    chk::token_shift(device(), out, x, x_prev, mix, reset);
    cpu::token_shift(out, x, x_prev, mix, reset);
  }
  void tanh(Tensor y, Tensor x) override {
    chk::unary("tanh", device(), y, x);
    cpu::tanh(y, x);
  }
  void sigmoid(Tensor y, Tensor x) override {
    chk::unary("sigmoid", device(), y, x);
    cpu::sigmoid(y, x);
  }
  void wkv7_prepare(const Wkv7PrepareArgs& a) override {
    chk::wkv7_prepare(device(), a);
    cpu::wkv7_prepare(a);
  }
  void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,
                   float eps) override {
    chk::wkv7_output(device(), y, r, k, v, r_k, g, ln_w, ln_b);
    cpu::wkv7_output(y, r, k, v, r_k, g, ln_w, ln_b, eps);
  }

  // Training (ops.h): backward passes, losses and optimiser steps, in ops_backward.cpp, student_backward.cpp, loss.cpp and optim.cpp.
  void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) override {
    chk::matmul_backward(device(), dx, dw, db, dy, x, w);
    cpu::matmul_backward(dx, dw, db, dy, x, w, accumulate_dx);
  }
  void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) override {
    chk::embedding_backward(device(), dtable, dy, ids);
    cpu::embedding_backward(dtable, dy, ids);
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) override {
    chk::rmsnorm_backward(device(), dx, dw, dy, x, w);
    cpu::rmsnorm_backward(dx, dw, dy, x, w, eps, accumulate_dx);
  }
  void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu_backward", device(), dy, gate, up);
    chk::same_shape("glu_backward", device(), dy, dgate, dup);
    cpu::glu_backward(dgate, dup, dy, gate, up, act);
  }
  void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                            Tensor reset) override {
    chk::token_shift_backward(device(), dx, dx_prev, dmix, dout, x, x_prev, mix, reset);
    cpu::token_shift_backward(dx, dx_prev, dmix, dout, x, x_prev, mix, reset);
  }
  void tanh_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("tanh_backward", device(), dx, dy, y);
    cpu::tanh_backward(dx, dy, y);
  }
  void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("sigmoid_backward", device(), dx, dy, y);
    cpu::sigmoid_backward(dx, dy, y);
  }
  void wkv7_prepare_backward(const Wkv7PrepareArgs& fwd, const Wkv7PrepareGrads& d) override {
    chk::wkv7_prepare_backward(device(), fwd, d);
    cpu::wkv7_prepare_backward(fwd, d);
  }
  void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                            Tensor ln_w, Tensor ln_b, float eps) override {
    chk::wkv7_output_backward(device(), d, y, r, k, v, r_k, g, ln_w, ln_b);
    cpu::wkv7_output_backward(d, y, r, k, v, r_k, g, ln_w, ln_b, eps);
  }
  void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) override {
    chk::loss_rows("cross_entropy", device(), loss, dlogits, logits, mask);
    chk::on_device("cross_entropy", device(), targets, DType::I32);
    if (targets.numel() != logits.rows()) fail("cross_entropy: targets {} for {} rows", targets.shape.str(), logits.rows());
    cpu::cross_entropy(loss, dlogits, logits, targets, mask, grad_scale);
  }
  void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
              float grad_scale) override {
    chk::loss_rows("kl_div", device(), loss, dlogits, logits, mask);
    chk::same_shape("kl_div", device(), logits, logits, teacher_logits);
    cpu::kl_div(loss, dlogits, logits, teacher_logits, mask, temperature, grad_scale);
  }
  void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                   float temperature, float grad_scale) override {
    chk::loss_rows("kl_div_topk", device(), loss, dlogits, logits, mask);
    chk::on_device("kl_div_topk", device(), teacher_ids, DType::I32);
    chk::on_device("kl_div_topk", device(), teacher_logits, DType::F32);
    if (!(teacher_ids.shape == teacher_logits.shape) || teacher_ids.rows() != logits.rows())
      fail("kl_div_topk: teacher ids {} and logits {} for {} rows", teacher_ids.shape.str(),
           teacher_logits.shape.str(), logits.rows());
    cpu::kl_div_topk(loss, dlogits, logits, teacher_ids, teacher_logits, mask, temperature, grad_scale);
  }
  void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) override {
    chk::loss_rows("align_loss", device(), loss, dstudent, student, mask);
    chk::same_shape("align_loss", device(), student, student, teacher);
    cpu::align_loss(loss, dstudent, student, teacher, mask, grad_scale);
  }
  void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) override {
    chk::adamw_step(device(), param, grad, m, v, step);
    cpu::adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
  }
  void sum_squares(Tensor acc, Tensor x) override {
    chk::on_device("sum_squares", device(), acc, DType::F32);
    chk::on_device("sum_squares", device(), x, DType::F32);
    if (acc.numel() != 1) fail("sum_squares: accumulator {} must hold one value", acc.shape.str());
    cpu::sum_squares(acc, x);
  }
  void scale(Tensor x, float s) override {
    chk::on_device("scale", device(), x, DType::F32);
    cpu::scale(x, s);
  }
};

}  // namespace

std::unique_ptr<Ops> make_cpu_ops() { return std::make_unique<CpuOps>(); }

}  // namespace arwkv
