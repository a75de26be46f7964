// The scalar reference of the dense ops' backward passes (see ops_backward_ref.h).
#include "backend/cpu/ref/ops_backward_ref.h"

#include <cmath>
#include <vector>

namespace arwkv::ref {
namespace {

bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }

}  // namespace

// dx = dy·w, dw += dyᵀ·x, db += Σ_m dy (ops.h); each sum in double, stored once.
void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) {
  const int64_t M = dy.rows(), N = dy.cols(), K = w.cols();
  const float *g = dy.f32(), *xp = x.f32(), *wp = w.f32();
  if (!empty(dx))
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        double s = accumulate_dx ? dx.f32()[m * K + k] : 0.0;
        for (int64_t n = 0; n < N; ++n) s += double{g[m * N + n]} * wp[n * K + k];
        dx.f32()[m * K + k] = static_cast<float>(s);
      }
  if (!empty(dw))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        double s = dw.f32()[n * K + k];
        for (int64_t m = 0; m < M; ++m) s += double{g[m * N + n]} * xp[m * K + k];
        dw.f32()[n * K + k] = static_cast<float>(s);
      }
  if (!empty(db))
    for (int64_t n = 0; n < N; ++n) {
      double s = db.f32()[n];
      for (int64_t m = 0; m < M; ++m) s += g[m * N + n];
      db.f32()[n] = static_cast<float>(s);
    }
}

// dtable[ids[t]] += dy[t], summed per table row in double (an id may repeat).
void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) {
  const int64_t C = dtable.cols(), V = dtable.rows(), T = ids.numel();
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = ids.i32()[t];
    if (id < 0 || id >= V) fail("embedding_backward: token id {} outside the vocabulary of {}", id, V);
  }
  std::vector<double> row(static_cast<size_t>(C));
  std::vector<bool> done(static_cast<size_t>(V));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = ids.i32()[t];
    if (done[static_cast<size_t>(id)]) continue;
    done[static_cast<size_t>(id)] = true;
    for (int64_t c = 0; c < C; ++c) row[c] = dtable.f32()[id * C + c];
    for (int64_t u = t; u < T; ++u)
      if (ids.i32()[u] == id)
        for (int64_t c = 0; c < C; ++c) row[c] += dy.f32()[u * C + c];
    for (int64_t c = 0; c < C; ++c) dtable.f32()[id * C + c] = static_cast<float>(row[c]);
  }
}

// y = x·s ⊙ w with s = (mean(x²) + eps)^(-1/2):
//   dw += Σ_rows dy ⊙ x·s;   dx = s·(dy ⊙ w) − x·s³·mean(dy ⊙ w ⊙ x)
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) {
  const int64_t R = x.rows(), C = x.cols();
  std::vector<double> dw_sum(static_cast<size_t>(C));
  for (int64_t r = 0; r < R; ++r) {
    const float *xr = x.f32() + r * C, *gr = dy.f32() + r * C;
    double ss = 0.0, dot = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      ss += double{xr[c]} * xr[c];
      dot += double{gr[c]} * w.f32()[c] * xr[c];
    }
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
    const double corr = s * s * s * dot / static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c) {
      dw_sum[c] += double{gr[c]} * xr[c] * s;
      if (empty(dx)) continue;
      const double g = s * gr[c] * w.f32()[c] - xr[c] * corr;
      float& out = dx.f32()[r * C + c];
      out = static_cast<float>(accumulate_dx ? out + g : g);
    }
  }
  if (!empty(dw))
    for (int64_t c = 0; c < C; ++c) dw.f32()[c] = static_cast<float>(dw.f32()[c] + dw_sum[c]);
}

double activation(Activation act, double x) {
  switch (act) {
    case Activation::Silu:
      return x / (1.0 + std::exp(-x));
    case Activation::GeluTanh:
      return 0.5 * x * (1.0 + std::tanh(kGeluK0 * (x + kGeluK1 * x * x * x)));
  }
  return 0.0;
}

// silu' = σ(x)·(1 + x·(1 − σ(x))); gelu' = ½(1 + t) + ½x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²) with
// t = tanh(√(2/π)·(x + 0.044715·x³)).
double activation_derivative(Activation act, double x) {
  switch (act) {
    case Activation::Silu: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 + x * (1.0 - s));
    }
    case Activation::GeluTanh: {
      const double t = std::tanh(kGeluK0 * (x + kGeluK1 * x * x * x));
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kGeluK0 * (1.0 + 3.0 * kGeluK1 * x * x);
    }
  }
  return 0.0;
}

// y = act(g)·u: dup = dy·act(g); dgate = dy·u·act'(g). Element by element, every input read before
// the outputs are stored, so any output may alias any input.
void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) {
  for (int64_t i = 0; i < dy.numel(); ++i) {
    const double d = dy.f32()[i], g = gate.f32()[i], u = up.f32()[i];
    dgate.f32()[i] = static_cast<float>(d * u * activation_derivative(act, g));
    dup.f32()[i] = static_cast<float>(d * activation(act, g));
  }
}

}  // namespace arwkv::ref
