// The scalar reference of the student ops' backward passes (see student_backward_ref.h).
#include "backend/cpu/ref/student_backward_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace arwkv::ref {
namespace {

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
bool empty(const Tensor& t) { return t.data == nullptr || t.numel() == 0; }

// Adds double sums into an fp32 parameter gradient (skipped when the gradient is not wanted).
void add_into(const Tensor& dst, const std::vector<double>& sums) {
  if (empty(dst)) return;
  for (size_t i = 0; i < sums.size(); ++i) dst.f32()[i] = static_cast<float>(dst.f32()[i] + sums[i]);
}

}  // namespace

// out[p, b, t] = x + (prev − x) ⊙ mix[p], prev = x[t−1] (x_prev at t = 0, zero on a reset):
//   dx[t] = Σ_p dout[p, t] ⊙ (1 − mix[p]) + Σ_p dout[p, t+1] ⊙ mix[p] (unless t+1 resets)
//   dmix[p] += Σ_{b,t} dout[p, t] ⊙ (prev − x);   dx_prev: see ops.h (in: d of x[T−1], out: d of x_prev)
void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                          Tensor reset) {
  const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
  const float *xp = x.f32(), *mp = mix.f32(), *g = dout.f32();
  auto resets = [&](int64_t b, int64_t t) { return !empty(reset) && reset.i32()[b * T + t] != 0; };
  auto dout_at = [&](int64_t p, int64_t b, int64_t t, int64_t c) { return double{g[((p * B + b) * T + t) * C + c]}; };
  std::vector<double> dmix_sum(static_cast<size_t>(P * C));
  for (int64_t b = 0; b < B && T > 0; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = xp + (b * T + t) * C;
      const float* pt = t == 0 ? x_prev.f32() + b * C : xt - C;
      const bool next_sees = t + 1 < T && !resets(b, t + 1);
      for (int64_t c = 0; c < C; ++c) {
        const double before = resets(b, t) ? 0.0 : pt[c];
        double s = t == T - 1 && !empty(dx_prev) ? dx_prev.f32()[b * C + c] : 0.0;
        for (int64_t p = 0; p < P; ++p) {
          s += dout_at(p, b, t, c) * (1.0 - mp[p * C + c]);
          if (next_sees) s += dout_at(p, b, t + 1, c) * mp[p * C + c];
          dmix_sum[p * C + c] += dout_at(p, b, t, c) * (before - xt[c]);
        }
        dx.f32()[(b * T + t) * C + c] = static_cast<float>(s);
      }
    }
    for (int64_t c = 0; c < C && !empty(dx_prev); ++c) {
      double s = 0.0;
      for (int64_t p = 0; p < P && !resets(b, 0); ++p) s += dout_at(p, b, 0, c) * mp[p * C + c];
      dx_prev.f32()[b * C + c] = static_cast<float>(s);
    }
  }
  add_into(dmix, dmix_sum);
}

void tanh_backward(Tensor dx, Tensor dy, Tensor y) {
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double yi = y.f32()[i];
    dx.f32()[i] = static_cast<float>(dy.f32()[i] * (1.0 - yi * yi));
  }
}

void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) {
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double yi = y.f32()[i];
    dx.f32()[i] = static_cast<float>(dy.f32()[i] * yi * (1.0 - yi));
  }
}

// Per row, with iclr = σ(a_logit), kk = n / max(‖n‖, 1e-12) per head for n = k ⊙ k_k:
//   d kk = −da + db ⊙ iclr;   d iclr = db ⊙ kk + dk' ⊙ k ⊙ k_a   (dk' the gradient of the updated k)
//   d n = (d kk − kk·⟨kk, d kk⟩) / ‖n‖  (d kk / 1e-12 where the floor holds)
//   dk = dk' ⊙ (1 + (iclr − 1) ⊙ k_a) + d n ⊙ k_k;   dk_k += d n ⊙ k;   dk_a += dk' ⊙ k ⊙ (iclr − 1)
//   dw_logit = dw ⊙ w ⊙ (−e^−0.5) ⊙ σ'(w_logit);   da_logit = d iclr ⊙ σ'(a_logit)
//   with s = σ(v_logit): dv = dv' ⊙ (1 − s);  dv_first += dv' ⊙ s;  dv_logit = dv' ⊙ (v_first − v) ⊙ s(1 − s)
void wkv7_prepare_backward(const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d) {
  const int64_t R = f.k.rows(), C = f.k.cols(), N = f.head_size;
  const double decay_scale = std::exp(-0.5);
  const bool residual = !empty(f.v_first);
  std::vector<double> kk(static_cast<size_t>(C)), dkk(static_cast<size_t>(C)), norm(static_cast<size_t>(C / N));
  std::vector<double> dkk_sum(static_cast<size_t>(C)), dka_sum(static_cast<size_t>(C));
  for (int64_t r = 0; r < R; ++r) {
    auto at = [&](const Tensor& t, int64_t c) -> float& { return t.f32()[r * C + c]; };
    for (int64_t h = 0; h < C / N; ++h) {
      double ss = 0.0;
      for (int64_t j = h * N; j < (h + 1) * N; ++j) ss += std::pow(double{at(f.k, j)} * f.k_k.f32()[j], 2);
      norm[h] = std::max(std::sqrt(ss), 1e-12);
      for (int64_t j = h * N; j < (h + 1) * N; ++j) kk[j] = double{at(f.k, j)} * f.k_k.f32()[j] / norm[h];
    }
    for (int64_t c = 0; c < C; ++c) {
      const double iclr = sigmoid_d(at(f.a_logit, c));
      dkk[c] = -double{at(d.da, c)} + at(d.db, c) * iclr;
    }
    for (int64_t h = 0; h < C / N; ++h) {
      double dot = 0.0;
      for (int64_t j = h * N; j < (h + 1) * N; ++j) dot += kk[j] * dkk[j];
      const bool floored = norm[h] <= 1e-12;
      for (int64_t j = h * N; j < (h + 1) * N; ++j) dkk[j] = (floored ? dkk[j] : dkk[j] - kk[j] * dot) / norm[h];
    }
    for (int64_t c = 0; c < C; ++c) {
      const double k = at(f.k, c), ka = f.k_a.f32()[c], dk1 = at(d.dk, c);
      const double iclr = sigmoid_d(at(f.a_logit, c)), sw = sigmoid_d(at(f.w_logit, c));
      const double diclr = at(d.db, c) * kk[c] + dk1 * k * ka;
      const double w = std::exp(-decay_scale * sw);
      at(d.dw_logit, c) = static_cast<float>(at(d.dw, c) * w * -decay_scale * sw * (1.0 - sw));
      at(d.da_logit, c) = static_cast<float>(diclr * iclr * (1.0 - iclr));
      at(d.dk, c) = static_cast<float>(dk1 * (1.0 + (iclr - 1.0) * ka) + dkk[c] * f.k_k.f32()[c]);
      dkk_sum[c] += dkk[c] * k;
      dka_sum[c] += dk1 * k * (iclr - 1.0);
      if (!residual) continue;
      const double dv1 = at(d.dv, c), s = sigmoid_d(at(f.v_logit, c));
      at(d.dv, c) = static_cast<float>(dv1 * (1.0 - s));
      at(d.dv_first, c) = static_cast<float>(at(d.dv_first, c) + dv1 * s);
      at(d.dv_logit, c) = static_cast<float>(dv1 * (double{at(f.v_first, c)} - at(f.v, c)) * s * (1.0 - s));
    }
  }
  add_into(d.dk_k, dkk_sum);
  add_into(d.dk_a, dka_sum);
}

// Per row and head, forward y → ŷ = (y − μ)/σ → y1 = ŷ ⊙ ln_w + ln_b → y2 = y1 + β·v → out = y2 ⊙ g
// with β = Σ_j r_j k_j r_k[j]. Backward: dy2 = dout ⊙ g, dg = dout ⊙ y2, dβ = ⟨dy2, v⟩,
// dv += β·dy2, dr += dβ·k ⊙ r_k, dk += dβ·r ⊙ r_k, dr_k += dβ·r ⊙ k, dln_w += dy2 ⊙ ŷ,
// dln_b += dy2, and dy = (dŷ − mean(dŷ) − ŷ·mean(dŷ ⊙ ŷ))/σ with dŷ = dy2 ⊙ ln_w.
void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                          Tensor ln_w, Tensor ln_b, float eps) {
  const int64_t R = y.rows(), C = y.cols(), H = r_k.dim(0), N = r_k.dim(1);
  const bool norm = !empty(ln_w), gate = !empty(g);
  std::vector<double> yhat(static_cast<size_t>(N)), dy2(static_cast<size_t>(N));
  std::vector<double> drk_sum(static_cast<size_t>(C)), dlw_sum(static_cast<size_t>(C)), dlb_sum(static_cast<size_t>(C));
  for (int64_t row = 0; row < R; ++row)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t o = row * C + h * N;
      auto at = [&](const Tensor& t, int64_t j) -> float& { return t.f32()[o + j]; };
      double mean = 0.0, var = 0.0, inv = 1.0, beta = 0.0, dbeta = 0.0;
      for (int64_t j = 0; j < N; ++j) mean += at(y, j) / static_cast<double>(N);
      for (int64_t j = 0; j < N; ++j) var += std::pow(at(y, j) - mean, 2) / static_cast<double>(N);
      if (norm) inv = 1.0 / std::sqrt(var + eps);
      for (int64_t j = 0; j < N; ++j) {
        yhat[j] = norm ? (at(y, j) - mean) * inv : at(y, j);
        beta += double{at(r, j)} * at(k, j) * r_k.f32()[h * N + j];
      }
      for (int64_t j = 0; j < N; ++j) {
        const double y1 = norm ? yhat[j] * ln_w.f32()[h * N + j] + ln_b.f32()[h * N + j] : yhat[j];
        const double dout = at(d.dy, j);
        dy2[j] = gate ? dout * at(g, j) : dout;
        if (gate) at(d.dg, j) = static_cast<float>(dout * (y1 + beta * at(v, j)));
        dbeta += dy2[j] * at(v, j);
      }
      double mean_d = 0.0, mean_dy = 0.0;
      for (int64_t j = 0; j < N; ++j) {
        const double rk = r_k.f32()[h * N + j];
        at(d.dv, j) = static_cast<float>(at(d.dv, j) + beta * dy2[j]);
        at(d.dr, j) = static_cast<float>(at(d.dr, j) + dbeta * at(k, j) * rk);
        at(d.dk, j) = static_cast<float>(at(d.dk, j) + dbeta * at(r, j) * rk);
        drk_sum[h * N + j] += dbeta * at(r, j) * at(k, j);
        if (!norm) continue;
        dlw_sum[h * N + j] += dy2[j] * yhat[j];
        dlb_sum[h * N + j] += dy2[j];
        dy2[j] *= ln_w.f32()[h * N + j];  // now dŷ
        mean_d += dy2[j] / static_cast<double>(N);
        mean_dy += dy2[j] * yhat[j] / static_cast<double>(N);
      }
      for (int64_t j = 0; j < N; ++j)
        at(d.dy, j) = static_cast<float>(norm ? (dy2[j] - mean_d - yhat[j] * mean_dy) * inv : dy2[j]);
    }
  add_into(d.dr_k, drk_sum);
  add_into(d.dln_w, dlw_sum);
  add_into(d.dln_b, dlb_sum);
}

}  // namespace arwkv::ref
