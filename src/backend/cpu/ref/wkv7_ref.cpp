// The scalar reference of WKV-7: per sequence and head, token by token, in double.
#include "backend/cpu/ref/wkv7_ref.h"

#include <vector>

namespace arwkv::ref {

void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                  Tensor reset) {
  const int64_t B = r.dim(0), T = r.dim(1), C = r.dim(2), H = state.dim(1), N = state.dim(2);
  const bool has_reset = reset.data != nullptr && reset.numel() > 0;
  std::vector<double> S(static_cast<size_t>(N * N)), sa(static_cast<size_t>(N));
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t h = 0; h < H; ++h) {
      float* st = state.f32() + (bi * H + h) * N * N;
      for (int64_t i = 0; i < N * N; ++i) S[static_cast<size_t>(i)] = st[i];
      for (int64_t t = 0; t < T; ++t) {
        if (has_reset && reset.i32()[bi * T + t]) std::fill(S.begin(), S.end(), 0.0);
        const int64_t o = (bi * T + t) * C + h * N;
        const float *rp = r.f32() + o, *wp = w.f32() + o, *kp = k.f32() + o, *vp = v.f32() + o, *ap = a.f32() + o,
                    *bp = b.f32() + o;
        for (int64_t i = 0; i < N; ++i) {
          double acc = 0.0;
          for (int64_t j = 0; j < N; ++j) acc += S[static_cast<size_t>(i * N + j)] * ap[j];
          sa[static_cast<size_t>(i)] = acc;
        }
        for (int64_t i = 0; i < N; ++i) {
          double acc = 0.0;
          for (int64_t j = 0; j < N; ++j) {
            double& s = S[static_cast<size_t>(i * N + j)];
            s = s * wp[j] + sa[static_cast<size_t>(i)] * bp[j] + static_cast<double>(vp[i]) * kp[j];
            acc += s * rp[j];
          }
          y.f32()[o + i] = static_cast<float>(acc);
        }
      }
      for (int64_t i = 0; i < N * N; ++i) st[i] = static_cast<float>(S[static_cast<size_t>(i)]);
    }
}

void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) {
  auto seq = [](Tensor t) { return t.reshape(Shape{t.dim(0), 1, t.dim(1)}); };
  wkv7_forward(seq(y), state, seq(r), seq(w), seq(k), seq(v), seq(a), seq(b), Tensor{});
}

}  // namespace arwkv::ref
