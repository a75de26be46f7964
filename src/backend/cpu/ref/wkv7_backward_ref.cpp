// The scalar reference of the WKV-7 backward pass: per sequence and head, the forward in double
// keeping every state, then back through time token by token. With P the state a token starts from
// (zero after a reset), the forward is
//   sa = P·a;   S = P·diag(w) + sa·bᵀ + v·kᵀ;   y = S·r
// and, given dS (the gradient of S from later tokens plus dy·rᵀ), the backward step is
//   dr = Sᵀ·dy;  dv = dS·k;  dk = dSᵀ·v;  dsa = dS·b;  db = dSᵀ·sa;  dw_j = Σ_i dS_ij·P_ij;
//   da = Pᵀ·dsa;  dP = dS·diag(w) + dsa·aᵀ   (zero before a reset: P did not depend on it).
// Memory is (T + 1)·N² doubles per head: a reference, not a training kernel.
#include "backend/cpu/ref/wkv7_backward_ref.h"

#include <algorithm>
#include <vector>

#include "backend/op_checks.h"

namespace arwkv::ref {
namespace {

// One (sequence, head): pointers already offset to the head's columns of token 0 (stride C per
// token) and to its state blocks.
struct Head {
  int64_t T, C, N;
  const float *dy, *r, *w, *k, *v, *a, *b, *state_in;
  const int32_t* reset;  // [T] or nullptr
  float *dr, *dw, *dk, *dv, *da, *db, *dstate;  // dstate may be nullptr
};

void head_backward(const Head& h) {
  const int64_t T = h.T, N = h.N, NN = N * N;
  auto at = [](std::vector<double>& x, int64_t i) -> double& { return x[static_cast<size_t>(i)]; };
  std::vector<double> S(static_cast<size_t>((T + 1) * NN)), sa(static_cast<size_t>(T * N), 0.0);
  std::vector<double> zero(static_cast<size_t>(NN), 0.0), dS(static_cast<size_t>(NN), 0.0);
  std::vector<double> dsa(static_cast<size_t>(N));
  for (int64_t e = 0; e < NN; ++e) at(S, e) = h.state_in[e];
  auto prev = [&](int64_t t) { return h.reset && h.reset[t] ? zero.data() : S.data() + t * NN; };

  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * h.C;
    const double* P = prev(t);
    double* Sn = S.data() + (t + 1) * NN;
    for (int64_t i = 0; i < N; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < N; ++j) acc += P[i * N + j] * h.a[o + j];
      at(sa, t * N + i) = acc;
      for (int64_t j = 0; j < N; ++j)
        Sn[i * N + j] = P[i * N + j] * h.w[o + j] + acc * h.b[o + j] + double{h.v[o + i]} * h.k[o + j];
    }
  }

  if (h.dstate)
    for (int64_t e = 0; e < NN; ++e) at(dS, e) = h.dstate[e];
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * h.C;
    const double *P = prev(t), *Sn = S.data() + (t + 1) * NN;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) at(dS, i * N + j) += double{h.dy[o + i]} * h.r[o + j];
    for (int64_t i = 0; i < N; ++i) {
      double dv = 0.0, ds = 0.0;
      for (int64_t j = 0; j < N; ++j) {
        dv += at(dS, i * N + j) * h.k[o + j];
        ds += at(dS, i * N + j) * h.b[o + j];
      }
      h.dv[o + i] = static_cast<float>(h.dv[o + i] + dv);
      at(dsa, i) = ds;
    }
    for (int64_t j = 0; j < N; ++j) {
      double dr = 0.0, dw = 0.0, dk = 0.0, da = 0.0, db = 0.0;
      for (int64_t i = 0; i < N; ++i) {
        const double g = at(dS, i * N + j);
        dr += Sn[i * N + j] * h.dy[o + i];
        dw += g * P[i * N + j];
        dk += g * h.v[o + i];
        da += at(dsa, i) * P[i * N + j];
        db += g * at(sa, t * N + i);
      }
      h.dr[o + j] = static_cast<float>(h.dr[o + j] + dr);
      h.dw[o + j] = static_cast<float>(h.dw[o + j] + dw);
      h.dk[o + j] = static_cast<float>(h.dk[o + j] + dk);
      h.da[o + j] = static_cast<float>(h.da[o + j] + da);
      h.db[o + j] = static_cast<float>(h.db[o + j] + db);
    }
    const bool cut = h.reset && h.reset[t];
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double& g = at(dS, i * N + j);
        g = cut ? 0.0 : g * h.w[o + j] + at(dsa, i) * h.a[o + j];
      }
  }
  if (h.dstate)
    for (int64_t e = 0; e < NN; ++e) h.dstate[e] = static_cast<float>(at(dS, e));
}

}  // namespace

void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v,
                   Tensor a, Tensor b, Tensor reset) {
  const int64_t B = r.dim(0), T = r.dim(1), C = r.dim(2), H = state_in.dim(1), N = state_in.dim(2);
  const bool has_reset = !op_checks::empty(reset), has_dstate = !op_checks::empty(d.dstate);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t o = bi * T * C + hh * N, so = (bi * H + hh) * N * N;
      head_backward(Head{T, C, N, dy.f32() + o, r.f32() + o, w.f32() + o, k.f32() + o, v.f32() + o, a.f32() + o,
                         b.f32() + o, state_in.f32() + so, has_reset ? reset.i32() + bi * T : nullptr,
                         d.dr.f32() + o, d.dw.f32() + o, d.dk.f32() + o, d.dv.f32() + o, d.da.f32() + o,
                         d.db.f32() + o, has_dstate ? d.dstate.f32() + so : nullptr});
    }
}

}  // namespace arwkv::ref
