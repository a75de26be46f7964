// The fast CPU forms of the losses (see loss.h). Each row: the max, then Σ exp(z/τ − max) in double
// for a stable log-sum-exp, then the loss and the gradient in one more pass. Every logit of a row
// is read before that row's gradient is stored, so dlogits may alias logits.
#include "backend/cpu/loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/vec_math.h"

namespace arwkv::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // fewer elements than this stay on one thread
constexpr float kNegligible = -87.0f;      // log p below this: p·log(p/q) counts as 0 (also p = 0)

bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }
bool counts(const Tensor& mask, int64_t r) { return empty(mask) || mask.i32()[r] != 0; }
int threads_for(int64_t work) { return omp_in_parallel() || work < kParallelMin ? 1 : omp_get_max_threads(); }

// log Σ_j exp(z_j·inv_tau) over one row.
double log_sum_exp(const float* z, int64_t n, float inv_tau) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, z[j]);
  const float shift = mx * inv_tau;
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += fast_exp(z[j] * inv_tau - shift);
  return shift + std::log(sum);
}

// Zero loss and gradient for a row that does not count; true when it does.
bool open_row(const Tensor& loss, const Tensor& dlogits, const Tensor& mask, int64_t r) {
  if (counts(mask, r)) return true;
  loss.f32()[r] = 0.0f;
  if (!empty(dlogits)) std::memset(dlogits.f32() + r * dlogits.cols(), 0, static_cast<size_t>(dlogits.cols()) * 4);
  return false;
}

}  // namespace

void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols();
  for (int64_t r = 0; r < R; ++r)
    if (counts(mask, r) && (targets.i32()[r] < 0 || targets.i32()[r] >= V))
      fail("cross_entropy: target {} outside the vocabulary of {}", targets.i32()[r], V);
#pragma omp parallel for num_threads(threads_for(R * V))
  for (int64_t r = 0; r < R; ++r) {
    if (!open_row(loss, dlogits, mask, r)) continue;
    const float* z = logits.f32() + r * V;
    const int32_t target = targets.i32()[r];
    const double lse = log_sum_exp(z, V, 1.0f);
    loss.f32()[r] = static_cast<float>(lse - z[target]);
    if (empty(dlogits)) continue;
    float* d = dlogits.f32() + r * V;
    const float lse_f = static_cast<float>(lse);
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) d[j] = grad_scale * fast_exp(z[j] - lse_f);
    d[target] -= grad_scale;
  }
}

// Σ_j p_t (log p_t − log p_s) with log p = z/τ − lse, and d = grad_scale·τ·(p_s − p_t), in one pass.
void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
            float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols();
  const float inv_tau = 1.0f / temperature, gs = grad_scale * temperature;
#pragma omp parallel for num_threads(threads_for(R * V))
  for (int64_t r = 0; r < R; ++r) {
    if (!open_row(loss, dlogits, mask, r)) continue;
    const float *zs = logits.f32() + r * V, *zt = teacher_logits.f32() + r * V;
    const double lse_s = log_sum_exp(zs, V, inv_tau), lse_t = log_sum_exp(zt, V, inv_tau);
    const float ls0 = static_cast<float>(lse_s), lt0 = static_cast<float>(lse_t);
    const float dl = static_cast<float>(lse_t - lse_s);
    float* d = empty(dlogits) ? nullptr : dlogits.f32() + r * V;
    double kl = 0.0;  // Σ p_t·(log p_t − log p_s), the difference taken without cancellation
#pragma omp simd reduction(+ : kl)
    for (int64_t j = 0; j < V; ++j) {
      const float lt = zt[j] * inv_tau - lt0;
      kl += lt > kNegligible ? fast_exp(lt) * ((zt[j] - zs[j]) * inv_tau - dl) : 0.0f;
    }
    if (d) {
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) d[j] = gs * (fast_exp(zs[j] * inv_tau - ls0) - fast_exp(zt[j] * inv_tau - lt0));
    }
    loss.f32()[r] = static_cast<float>(kl) * temperature * temperature;
  }
}

void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                 float temperature, float grad_scale) {
  const int64_t R = logits.rows(), V = logits.cols(), K = teacher_ids.cols();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K && counts(mask, r); ++k)
      if (teacher_ids.i32()[r * K + k] < 0 || teacher_ids.i32()[r * K + k] >= V)
        fail("kl_div_topk: teacher id {} outside the vocabulary of {}", teacher_ids.i32()[r * K + k], V);
  const float inv_tau = 1.0f / temperature, gs = grad_scale * temperature;
#pragma omp parallel for num_threads(threads_for(R * V))
  for (int64_t r = 0; r < R; ++r) {
    if (!open_row(loss, dlogits, mask, r)) continue;
    const float *zs = logits.f32() + r * V, *zt = teacher_logits.f32() + r * K;
    const int32_t* ids = teacher_ids.i32() + r * K;
    const double lse_s_d = log_sum_exp(zs, V, inv_tau), lse_t_d = log_sum_exp(zt, K, inv_tau);
    const float lse_s = static_cast<float>(lse_s_d), lse_t = static_cast<float>(lse_t_d);
    const float dl = static_cast<float>(lse_t_d - lse_s_d);
    double kl = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const float lt = zt[k] * inv_tau - lse_t;
      if (lt > kNegligible) kl += fast_exp(lt) * ((zt[k] - zs[ids[k]]) * inv_tau - dl);
    }
    loss.f32()[r] = static_cast<float>(kl) * temperature * temperature;
    if (empty(dlogits)) continue;
    float* d = dlogits.f32() + r * V;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) d[j] = gs * fast_exp(zs[j] * inv_tau - lse_s);
    for (int64_t k = 0; k < K; ++k) d[ids[k]] -= gs * fast_exp(zt[k] * inv_tau - lse_t);
  }
}

void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) {
  const int64_t R = student.rows(), C = student.cols();
  const float g2 = 2.0f * grad_scale / static_cast<float>(C);
#pragma omp parallel for num_threads(threads_for(R * C))
  for (int64_t r = 0; r < R; ++r) {
    if (!open_row(loss, dstudent, mask, r)) continue;
    const float *s = student.f32() + r * C, *t = teacher.f32() + r * C;
    float* d = empty(dstudent) ? nullptr : dstudent.f32() + r * C;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) {
      const float diff = s[c] - t[c];
      ss += diff * diff;
      if (d) d[c] = g2 * diff;
    }
    loss.f32()[r] = static_cast<float>(ss / static_cast<double>(C));
  }
}

}  // namespace arwkv::cpu
