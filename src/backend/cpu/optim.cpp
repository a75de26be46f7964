// The fast CPU forms of the optimiser's steps (see optim.h).
#include "backend/cpu/optim.h"

#include <cmath>

namespace arwkv::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // fewer elements than this stay on one thread

}  // namespace

// Bias corrections in double once per call; the update in fp32 with the step size folded in:
// p ← p·(1 − lr·wd) − (lr / c1)·m / (sqrt(v / c2) + eps).
void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                float weight_decay, int64_t step) {
  const double c1 = 1.0 - std::pow(double{beta1}, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(double{beta2}, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / c1), inv_c2 = static_cast<float>(1.0 / c2);
  const float decay = 1.0f - lr * weight_decay, b1 = beta1, b2 = beta2;
  const int64_t n = param.numel();
  float *p = param.f32(), *mp = m.f32(), *vp = v.f32();
  const float* g = grad.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float mi = b1 * mp[i] + (1.0f - b1) * g[i];
    const float vi = b2 * vp[i] + (1.0f - b2) * g[i] * g[i];
    mp[i] = mi;
    vp[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi * inv_c2) + eps);
  }
}

void sum_squares(Tensor acc, Tensor x) {
  const int64_t n = x.numel();
  const float* xp = x.f32();
  double s = 0.0;
#pragma omp parallel for simd reduction(+ : s) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) s += xp[i] * xp[i];
  acc.f32()[0] = static_cast<float>(acc.f32()[0] + s);
}

void scale(Tensor x, float s) {
  const int64_t n = x.numel();
  float* xp = x.f32();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) xp[i] *= s;
}

}  // namespace arwkv::cpu
