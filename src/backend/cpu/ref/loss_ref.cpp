// The scalar reference of the losses and the optimiser steps (see loss_ref.h).
#include "backend/cpu/ref/loss_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace arwkv::ref {
namespace {

bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }
bool counts(const Tensor& mask, int64_t r) { return empty(mask) || mask.i32()[r] != 0; }

// log Σ_j exp(z_j / tau) and the softmax p_j = exp(z_j / tau − lse), over one row.
double log_softmax_row(const float* z, int64_t n, double tau, std::vector<double>& p) {
  p.resize(static_cast<size_t>(n));
  double mx = -INFINITY, sum = 0.0;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, z[j] / tau);
  for (int64_t j = 0; j < n; ++j) sum += std::exp(z[j] / tau - mx);
  const double lse = mx + std::log(sum);
  for (int64_t j = 0; j < n; ++j) p[j] = std::exp(z[j] / tau - lse);
  return lse;
}

// Stores grad_scale·g into row r of dlogits (zero for a masked row); g may be the row of logits.
void store_row(const Tensor& dlogits, int64_t r, const std::vector<double>& g, bool counted, double grad_scale) {
  if (empty(dlogits)) return;
  float* out = dlogits.f32() + r * dlogits.cols();
  for (int64_t j = 0; j < dlogits.cols(); ++j) out[j] = counted ? static_cast<float>(grad_scale * g[j]) : 0.0f;
}

}  // namespace

// loss = lse(z) − z[target];  d/dz = softmax(z) − onehot(target)
void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols();
  std::vector<double> p;
  for (int64_t r = 0; r < R; ++r) {
    const bool on = counts(mask, r);
    const int32_t target = targets.i32()[r];
    if (on && (target < 0 || target >= V)) fail("cross_entropy: target {} outside the vocabulary of {}", target, V);
    const float* z = logits.f32() + r * V;
    const double lse = log_softmax_row(z, V, 1.0, p);
    loss.f32()[r] = on ? static_cast<float>(lse - z[target]) : 0.0f;
    if (on) p[static_cast<size_t>(target)] -= 1.0;
    store_row(dlogits, r, p, on, grad_scale);
  }
}

// loss = τ²·Σ_j p_t (log p_t − log p_s);  d/dz_s = τ·(p_s − p_t)
void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
            float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols();
  const double tau = temperature;
  std::vector<double> ps, pt;
  for (int64_t r = 0; r < R; ++r) {
    const bool on = counts(mask, r);
    const float *zs = logits.f32() + r * V, *zt = teacher_logits.f32() + r * V;
    const double lse_s = log_softmax_row(zs, V, tau, ps), lse_t = log_softmax_row(zt, V, tau, pt);
    double kl = 0.0;
    for (int64_t j = 0; j < V; ++j) {
      if (pt[j] > 0.0) kl += pt[j] * ((zt[j] / tau - lse_t) - (zs[j] / tau - lse_s));
      ps[j] = tau * (ps[j] - pt[j]);
    }
    loss.f32()[r] = on ? static_cast<float>(tau * tau * kl) : 0.0f;
    store_row(dlogits, r, ps, on, grad_scale);
  }
}

// p_t = softmax over the K given teacher logits at τ;  loss = τ²·Σ_k p_t,k (log p_t,k − log p_s[id_k]);
// d/dz_s = τ·(p_s − p_t scattered to the ids)
void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                 float temperature, float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols(), K = teacher_ids.cols();
  const double tau = temperature;
  std::vector<double> ps, pt;
  for (int64_t r = 0; r < R; ++r) {
    const bool on = counts(mask, r);
    const float *zs = logits.f32() + r * V, *zt = teacher_logits.f32() + r * K;
    const int32_t* ids = teacher_ids.i32() + r * K;
    const double lse_s = log_softmax_row(zs, V, tau, ps), lse_t = log_softmax_row(zt, K, tau, pt);
    for (auto& p : ps) p *= tau;
    double kl = 0.0;
    for (int64_t k = 0; k < K && on; ++k) {
      if (ids[k] < 0 || ids[k] >= V) fail("kl_div_topk: teacher id {} outside the vocabulary of {}", ids[k], V);
      if (pt[k] > 0.0) kl += pt[k] * ((zt[k] / tau - lse_t) - (zs[ids[k]] / tau - lse_s));
      ps[static_cast<size_t>(ids[k])] -= tau * pt[k];
    }
    loss.f32()[r] = on ? static_cast<float>(tau * tau * kl) : 0.0f;
    store_row(dlogits, r, ps, on, grad_scale);
  }
}

// loss = ‖teacher − student‖²/C;  d/d student = 2·(student − teacher)/C
void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) {
  const int64_t R = student.rows(), C = student.cols();
  std::vector<double> g(static_cast<size_t>(C));
  for (int64_t r = 0; r < R; ++r) {
    const bool on = counts(mask, r);
    double ss = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double diff = double{student.f32()[r * C + c]} - teacher.f32()[r * C + c];
      ss += diff * diff;
      g[c] = 2.0 * diff / static_cast<double>(C);
    }
    loss.f32()[r] = on ? static_cast<float>(ss / static_cast<double>(C)) : 0.0f;
    store_row(dstudent, r, g, on, grad_scale);
  }
}

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step) {
  const double c1 = 1.0 - std::pow(double{beta1}, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(double{beta2}, static_cast<double>(step));
  for (int64_t i = 0; i < param.numel(); ++i) {
    const double g = grad.f32()[i];
    const double mi = beta1 * double{m.f32()[i]} + (1.0 - beta1) * g;
    const double vi = beta2 * double{v.f32()[i]} + (1.0 - beta2) * g * g;
    const double p = param.f32()[i] * (1.0 - double{lr} * weight_decay);
    param.f32()[i] = static_cast<float>(p - lr * (mi / c1) / (std::sqrt(vi / c2) + eps));
    m.f32()[i] = static_cast<float>(mi);
    v.f32()[i] = static_cast<float>(vi);
  }
}

void sum_squares(Tensor acc, Tensor x) {
  double s = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) s += double{x.f32()[i]} * x.f32()[i];
  acc.f32()[0] = static_cast<float>(acc.f32()[0] + s);
}

void scale(Tensor x, float s) {
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] *= s;
}

}  // namespace arwkv::ref
