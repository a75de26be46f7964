// CPU causal GQA attention. Work is split over (query, head) pairs; each thread keeps one row of
// scores (the query against its visible keys) and a head_dim accumulator, never a [T, S] matrix.
// Two passes over the keys: scores and their max, then exp, sum and the weighted sum of values.
// The head size is a template parameter (64, 128, or any at run time) chosen in one switch.
#include "backend/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/vec_math.h"

namespace arwkv::cpu {
namespace {

constexpr int kKeyBlock = 8;  // keys scored together so their dot products run side by side

template <int D>
void score_keys(const float* q, const float* k, int64_t ld, int64_t n_keys, int d_rt, float scale,
                float* s) {
  const int d = D ? D : d_rt;
  int64_t j = 0;
  for (; j + kKeyBlock <= n_keys; j += kKeyBlock) {
    float acc[kKeyBlock][8] = {};
    for (int i = 0; i + 8 <= d; i += 8)
      for (int b = 0; b < kKeyBlock; ++b) {
        const float* kr = k + (j + b) * ld + i;
#pragma omp simd
        for (int l = 0; l < 8; ++l) acc[b][l] += q[i + l] * kr[l];
      }
    for (int b = 0; b < kKeyBlock; ++b) {
      float sum = 0.0f;
      for (int l = 0; l < 8; ++l) sum += acc[b][l];
      for (int i = d & ~7; i < d; ++i) sum += q[i] * k[(j + b) * ld + i];
      s[j + b] = sum * scale;
    }
  }
  for (; j < n_keys; ++j) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < d; ++i) sum += q[i] * k[j * ld + i];
    s[j] = sum * scale;
  }
}

// Output accumulation: with a compile-time head size the accumulator is a local array the
// compiler keeps in registers; otherwise it lives in the thread's scratch.
template <int D>
void weighted_values(const float* s, const float* v, int64_t ld, int64_t n_keys, int d_rt, float* acc_rt,
                     float inv_sum, float* out) {
  if constexpr (D > 0) {
    float acc[D] = {};
    for (int64_t j = 0; j < n_keys; ++j) {
      const float p = s[j];
      const float* vr = v + j * ld;
#pragma omp simd
      for (int i = 0; i < D; ++i) acc[i] += p * vr[i];
    }
    for (int i = 0; i < D; ++i) out[i] = acc[i] * inv_sum;
  } else {
    std::fill(acc_rt, acc_rt + d_rt, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) {
      const float p = s[j];
      const float* vr = v + j * ld;
#pragma omp simd
      for (int i = 0; i < d_rt; ++i) acc_rt[i] += p * vr[i];
    }
    for (int i = 0; i < d_rt; ++i) out[i] = acc_rt[i] * inv_sum;
  }
}

template <int D>
void attend(const float* q, const float* k, const float* v, int64_t ld, int64_t n_keys, int d_rt, float scale,
            float* s, float* acc, float* out) {
  score_keys<D>(q, k, ld, n_keys, d_rt, scale, s);
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n_keys; ++j) mx = s[j] > mx ? s[j] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n_keys; ++j) {
    s[j] = fast_exp(s[j] - mx);
    sum += s[j];
  }
  weighted_values<D>(s, v, ld, n_keys, d_rt, acc, 1.0f / sum, out);
}

using AttendFn = void (*)(const float*, const float*, const float*, int64_t, int64_t, int, float, float*, float*,
                          float*);

AttendFn pick_kernel(int head_dim) {
  switch (head_dim) {
    case 64: return attend<64>;
    case 128: return attend<128>;
    default: return attend<0>;
  }
}

}  // namespace

int max_threads() { return omp_get_max_threads(); }

void attention(Tensor out, Tensor q, Tensor k, Tensor v, const int32_t* key_start, const AttentionArgs& a,
               float* scratch) {
  const int64_t T = q.rows(), S = k.rows(), d = a.head_dim;
  const int64_t ldq = q.cols(), ldk = k.cols();
  const int group = a.n_heads / a.n_kv_heads;
  const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(d));
  const AttendFn kernel = pick_kernel(a.head_dim);
  const float *qp = q.f32(), *kp = k.f32(), *vp = v.f32();
  float* op = out.f32();
  const int64_t tasks = T * a.n_heads;
#pragma omp parallel if (tasks > 1 && S * tasks > 4096)
  {
    float* s = scratch + omp_get_thread_num() * (S + d);
    float* acc = s + S;
#pragma omp for schedule(dynamic, 4)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t t = task / a.n_heads;
      const int h = static_cast<int>(task % a.n_heads);
      const int64_t last = a.q_offset + t;
      const int64_t first = key_start ? key_start[t] : 0;
      const int64_t kv = int64_t{h / group} * d;
      kernel(qp + t * ldq + h * d, kp + first * ldk + kv, vp + first * ldk + kv, ldk, last - first + 1,
             static_cast<int>(d), scale, s, acc, op + t * ldq + h * d);
    }
  }
}

}  // namespace arwkv::cpu
