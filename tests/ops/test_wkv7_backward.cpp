// The WKV-7 backward pass on every backend: the scalar reference against central finite differences
// of a double-precision forward written here from the equations (small heads, resets, a non-zero
// initial state and final-state gradient); every backend against the reference at heads of 64 and
// others, decays near 0.545 and near 1, hundreds of tokens; and the properties training relies on:
// back-propagating a sequence piece by piece with the state gradient carried equals one pass,
// gradients accumulate, an empty dstate means zero. A new backend joins by adding its factory to
// backends(); tensors travel through the backend's own alloc/upload/download.
#include <gtest/gtest.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "backend/ops.h"
#include "core/error.h"
#include "test_util.h"

namespace arwkv {
namespace {

enum class Decay { low, high, mixed };

// Inputs shaped as the model makes them (per head kk of unit length, a = −kk, b = kk ⊙ iclr), the
// gradient dy of y and dstate_out of the final state.
struct Inputs {
  int64_t B, T, H, N;
  std::vector<float> r, w, k, v, a, b, dy, state, dstate;
  std::vector<int32_t> reset;
  int64_t C() const { return H * N; }
  std::array<std::vector<float>*, 6> seq_inputs() { return {&r, &w, &k, &v, &a, &b}; }
  std::array<const std::vector<float>*, 6> seq_inputs() const { return {&r, &w, &k, &v, &a, &b}; }
};

Inputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t N, Decay decay, uint64_t seed) {
  Inputs in{B, T, H, N};
  const size_t n = static_cast<size_t>(B * T * H * N), ns = static_cast<size_t>(B * H * N * N);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), u01(0.0f, 1.0f);
  std::normal_distribution<float> z(0.0f, 3.0f);
  for (auto* x : {&in.r, &in.w, &in.k, &in.v, &in.a, &in.b, &in.dy}) x->resize(n);
  for (size_t i = 0; i < n; ++i) {
    in.r[i] = u(rng), in.k[i] = u(rng), in.v[i] = u(rng), in.dy[i] = u(rng);
    if (decay == Decay::low) in.w[i] = 0.545f + 0.01f * u01(rng);
    if (decay == Decay::high) in.w[i] = 1.0f - 1e-3f * u01(rng);
    if (decay == Decay::mixed) in.w[i] = std::exp(-0.606531f / (1.0f + std::exp(-z(rng))));
  }
  for (size_t row = 0; row < n / static_cast<size_t>(N); ++row) {
    float* kk = in.a.data() + row * static_cast<size_t>(N);
    double norm = 0.0;
    for (int64_t j = 0; j < N; ++j) norm += static_cast<double>(kk[j] = u(rng)) * kk[j];
    for (int64_t j = 0; j < N; ++j) {
      kk[j] = static_cast<float>(kk[j] / std::sqrt(norm));
      in.b[row * static_cast<size_t>(N) + static_cast<size_t>(j)] = kk[j] * u01(rng);
      kk[j] = -kk[j];
    }
  }
  in.state = test::random_vector(ns, seed + 1, -0.5f, 0.5f);
  in.dstate = test::random_vector(ns, seed + 2, -1.0f, 1.0f);
  return in;
}

// ---- The finite-difference oracle: a double forward and L = Σ dy·y + Σ dstate·S_T -------------

struct DInputs {
  int64_t B, T, H, N;
  std::vector<double> x[7];  // r, w, k, v, a, b, state
};

double loss(const DInputs& in, const Inputs& f) {
  const int64_t N = in.N, C = in.H * N;
  const auto &r = in.x[0], &w = in.x[1], &k = in.x[2], &v = in.x[3], &a = in.x[4], &b = in.x[5];
  double L = 0.0;
  for (int64_t bi = 0; bi < in.B; ++bi)
    for (int64_t h = 0; h < in.H; ++h) {
      const size_t so = static_cast<size_t>((bi * in.H + h) * N * N);
      std::vector<double> S(in.x[6].begin() + so, in.x[6].begin() + so + N * N), sa(N);
      for (int64_t t = 0; t < in.T; ++t) {
        if (!f.reset.empty() && f.reset[bi * in.T + t]) std::fill(S.begin(), S.end(), 0.0);
        const int64_t o = (bi * in.T + t) * C + h * N;
        for (int64_t i = 0; i < N; ++i) {
          sa[i] = 0.0;
          for (int64_t j = 0; j < N; ++j) sa[i] += S[i * N + j] * a[o + j];
        }
        for (int64_t i = 0; i < N; ++i) {
          double y = 0.0;
          for (int64_t j = 0; j < N; ++j) {
            S[i * N + j] = S[i * N + j] * w[o + j] + sa[i] * b[o + j] + v[o + i] * k[o + j];
            y += S[i * N + j] * r[o + j];
          }
          L += f.dy[o + i] * y;
        }
      }
      for (int64_t e = 0; e < N * N; ++e) L += f.dstate[so + e] * S[e];
    }
  return L;
}

// ∂L/∂x by central differences for every element of the seven inputs.
std::vector<std::vector<double>> finite_differences(const Inputs& f) {
  DInputs in{f.B, f.T, f.H, f.N, {}};
  const std::vector<float>* src[7] = {&f.r, &f.w, &f.k, &f.v, &f.a, &f.b, &f.state};
  for (int q = 0; q < 7; ++q) in.x[q].assign(src[q]->begin(), src[q]->end());
  std::vector<std::vector<double>> g(7);
  const double h = 1e-5;
  for (int q = 0; q < 7; ++q)
    for (double& x : in.x[q]) {
      const double x0 = x;
      x = x0 + h;
      const double up = loss(in, f);
      x = x0 - h;
      const double down = loss(in, f);
      x = x0;
      g[q].push_back((up - down) / (2 * h));
    }
  return g;
}

// ---- Running the op on a backend ----------------------------------------------------------------

struct DevTensor {
  Buffer buf;
  Tensor t;
  DevTensor(Ops& ops, Shape s, const void* host, DType dt = DType::F32) {
    buf = ops.alloc(static_cast<size_t>(s.numel()) * dtype_size(dt));
    t = Tensor{buf.data(), s, dt, ops.device()};
    if (host) ops.upload(t, host);
  }
};

std::vector<float> fetch(Ops& ops, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops.download(out.data(), t);
  return out;
}

// dr, dw, dk, dv, da, db, dstate (the gradient of state_in)
struct Grads {
  std::vector<float> g[7];
};
const char* const kNames[7] = {"dr", "dw", "dk", "dv", "da", "db", "dstate"};

// wkv7_backward of in.dy and in.dstate (zero and not passed when with_dstate is false), starting
// the six input gradients from `start` (zeros when empty).
Grads run_backward(Ops& ops, const Inputs& in, bool with_dstate = true, const Grads* start = nullptr) {
  const Shape seq{in.B, in.T, in.C()}, st{in.B, in.H, in.N, in.N};
  const std::vector<float> zeros(static_cast<size_t>(seq.numel()), 0.0f);
  DevTensor dy(ops, seq, in.dy.data()), state(ops, st, in.state.data()), dstate(ops, st, in.dstate.data());
  std::vector<std::unique_ptr<DevTensor>> x, g;
  for (int q = 0; q < 6; ++q) {
    x.push_back(std::make_unique<DevTensor>(ops, seq, in.seq_inputs()[q]->data()));
    g.push_back(std::make_unique<DevTensor>(ops, seq, start ? start->g[q].data() : zeros.data()));
  }
  std::unique_ptr<DevTensor> reset;
  if (!in.reset.empty()) reset = std::make_unique<DevTensor>(ops, Shape{in.B, in.T}, in.reset.data(), DType::I32);
  const Wkv7Grads d{g[0]->t, g[1]->t, g[2]->t, g[3]->t, g[4]->t, g[5]->t, with_dstate ? dstate.t : Tensor{}};
  ops.wkv7_backward(d, dy.t, state.t, x[0]->t, x[1]->t, x[2]->t, x[3]->t, x[4]->t, x[5]->t,
                    reset ? reset->t : Tensor{});
  Grads out;
  for (int q = 0; q < 6; ++q) out.g[q] = fetch(ops, g[static_cast<size_t>(q)]->t);
  out.g[6] = with_dstate ? fetch(ops, dstate.t) : std::vector<float>{};
  return out;
}

// The state after the forward of `in` on a backend (for cutting a sequence into pieces).
std::vector<float> forward_state(Ops& ops, const Inputs& in) {
  const Shape seq{in.B, in.T, in.C()};
  DevTensor y(ops, seq, nullptr), st(ops, Shape{in.B, in.H, in.N, in.N}, in.state.data());
  std::vector<std::unique_ptr<DevTensor>> x;
  for (int q = 0; q < 6; ++q) x.push_back(std::make_unique<DevTensor>(ops, seq, in.seq_inputs()[q]->data()));
  std::unique_ptr<DevTensor> reset;
  if (!in.reset.empty()) reset = std::make_unique<DevTensor>(ops, Shape{in.B, in.T}, in.reset.data(), DType::I32);
  ops.wkv7_forward(y.t, st.t, x[0]->t, x[1]->t, x[2]->t, x[3]->t, x[4]->t, x[5]->t, reset ? reset->t : Tensor{});
  return fetch(ops, st.t);
}

// Tokens [t0, t1) of every sequence (inputs, dy and resets), with the given state and dstate.
Inputs slice(const Inputs& in, int64_t t0, int64_t t1, std::vector<float> state, std::vector<float> dstate) {
  Inputs out{in.B, t1 - t0, in.H, in.N};
  out.state = std::move(state), out.dstate = std::move(dstate);
  const int64_t C = in.C();
  auto cut = [&](const std::vector<float>& x, std::vector<float>& dst) {
    for (int64_t bi = 0; bi < in.B; ++bi)
      dst.insert(dst.end(), x.begin() + (bi * in.T + t0) * C, x.begin() + (bi * in.T + t1) * C);
  };
  for (int q = 0; q < 6; ++q) cut(*in.seq_inputs()[q], *out.seq_inputs()[q]);
  cut(in.dy, out.dy);
  if (!in.reset.empty())
    for (int64_t bi = 0; bi < in.B; ++bi)
      out.reset.insert(out.reset.end(), in.reset.begin() + bi * in.T + t0, in.reset.begin() + bi * in.T + t1);
  return out;
}

// max |got − want| over max |want|, for one gradient.
template <typename W>
double rel_error(const std::vector<float>& got, const std::vector<W>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0.0, den = 1e-30;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    num = std::max(num, std::fabs(got[i] - static_cast<double>(want[i])));
    den = std::max(den, std::fabs(static_cast<double>(want[i])));
  }
  return num / den;
}

// Each gradient within tol of want's (relative to want's largest value); with print, the errors
// seen go to stdout.
template <typename W>
void expect_grads_close(const Grads& got, const W& want, double tol, const std::string& what, int n = 7,
                        bool print = false) {
  if (print) std::printf("%-44s", what.c_str());
  for (int q = 0; q < n; ++q) {
    const double e = rel_error(got.g[q], want[q]);
    EXPECT_LE(e, tol) << what << ": " << kNames[q];
    if (print) std::printf(" %s %.1e", kNames[q], e);
  }
  if (print) std::printf("\n");
}

std::vector<std::vector<float>> as_vectors(const Grads& g) { return {std::begin(g.g), std::end(g.g)}; }

// ---- The reference against finite differences ----------------------------------------------------

TEST(Wkv7BackwardReference, MatchesFiniteDifferences) {
  struct Case {
    int64_t B, T, H, N;
    bool resets;
  };
  const Case cases[] = {{1, 17, 1, 8, false}, {2, 13, 2, 5, true}, {1, 11, 3, 4, false}, {2, 20, 1, 6, true}};
  uint64_t seed = 300;
  for (const Case& c : cases) {
    Inputs in = make_inputs(c.B, c.T, c.H, c.N, Decay::mixed, seed++);
    if (c.resets) {
      in.reset.assign(static_cast<size_t>(c.B * c.T), 0);
      in.reset[5] = 1;                                    // sequence 0, token 5
      in.reset[static_cast<size_t>(c.T)] = 1;             // sequence 1, token 0: state_in gets no gradient
      in.reset[static_cast<size_t>(c.T + c.T - 1)] = 1;   // sequence 1, last token
    }
    const Grads got = run_backward(*make_reference_ops(), in);
    const std::string what = "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
                             " N=" + std::to_string(c.N) + (c.resets ? " resets" : "");
    expect_grads_close(got, finite_differences(in), 1e-6, what, 7, true);
    if (c.resets)  // sequence 1 resets at token 0: its initial state gets exactly zero gradient
      for (int64_t e = c.H * c.N * c.N; e < 2 * c.H * c.N * c.N; ++e) ASSERT_EQ(got.g[6][e], 0.0f) << what;
  }
}

// ---- Every backend --------------------------------------------------------------------------------

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
};

void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{
      {"reference", make_reference_ops}, {"cpu", make_cpu_ops}, {"cuda_emulated", make_cuda_emulated_ops}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops});
  return out;
}

class Wkv7BackwardTest : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ref = make_reference_ops();
  std::unique_ptr<Ops> ops = GetParam().make();
};

TEST_P(Wkv7BackwardTest, MatchesReference) {
  struct Case {
    int64_t B, T, H, N;
    Decay decay;
    int threads;  // 0: the default; more threads than heads splits heads into row blocks
  };
  const Case cases[] = {{2, 300, 3, 64, Decay::low, 0},  {2, 300, 3, 64, Decay::high, 0}, {1, 257, 2, 64, Decay::mixed, 0},
                        {1, 200, 1, 64, Decay::high, 3}, {1, 90, 2, 64, Decay::mixed, 5},  {2, 70, 2, 24, Decay::mixed, 0},
                        {1, 45, 3, 7, Decay::low, 0},    {1, 40, 2, 128, Decay::mixed, 4}, {1, 1, 3, 64, Decay::mixed, 0},
                        {1, 1100, 1, 64, Decay::high, 0}};  // T > 1024: checkpoints every 34 tokens
  uint64_t seed = 1;
  const int default_threads = omp_get_max_threads();
  for (const Case& c : cases) {
    Inputs in = make_inputs(c.B, c.T, c.H, c.N, c.decay, seed++);
    in.reset.assign(static_cast<size_t>(c.B * c.T), 0);
    in.reset[static_cast<size_t>(c.T / 3)] = 1;
    if (c.B > 1) in.reset[static_cast<size_t>(c.T + c.T / 2)] = 1;
    const std::string what = "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
                             " N=" + std::to_string(c.N) + " decay=" + std::to_string(static_cast<int>(c.decay)) +
                             " threads=" + std::to_string(c.threads);
    const Grads want = run_backward(*ref, in);
    if (c.threads) omp_set_num_threads(c.threads);
    const Grads got = run_backward(*ops, in);
    omp_set_num_threads(default_threads);
    expect_grads_close(got, as_vectors(want), 1e-5, what, 7, true);  // seen: up to 6e-7
  }
}

TEST_P(Wkv7BackwardTest, PiecesCarryingStateGradientEqualOnePass) {
  for (int64_t N : {64, 24}) {
    Inputs in = make_inputs(2, 160, 2, N, Decay::mixed, 50 + N);
    in.reset.assign(static_cast<size_t>(in.B * in.T), 0);
    in.reset[static_cast<size_t>(in.T + 120)] = 1;
    const Grads whole = run_backward(*ops, in);

    // Forward piece by piece to get each piece's state_in, then backward last piece first.
    const int64_t cuts[] = {0, 1, 50, 99, 160};
    std::vector<std::vector<float>> states{in.state};
    for (int i = 0; i + 2 < 5; ++i)
      states.push_back(forward_state(*ops, slice(in, cuts[i], cuts[i + 1], states.back(), {})));
    std::vector<float> dstate = in.dstate;
    std::vector<Grads> parts(4);
    for (int i = 3; i >= 0; --i) {
      parts[static_cast<size_t>(i)] = run_backward(*ops, slice(in, cuts[i], cuts[i + 1], states[static_cast<size_t>(i)], dstate));
      dstate = parts[static_cast<size_t>(i)].g[6];
    }
    Grads pieces;
    pieces.g[6] = dstate;
    for (int q = 0; q < 6; ++q)
      for (int64_t bi = 0; bi < in.B; ++bi)  // pieces are [B, T_i, C]: put the tokens back in order
        for (int i = 0; i < 4; ++i) {
          const std::vector<float>& g = parts[static_cast<size_t>(i)].g[q];
          const int64_t len = (cuts[i + 1] - cuts[i]) * in.C();
          pieces.g[q].insert(pieces.g[q].end(), g.begin() + bi * len, g.begin() + (bi + 1) * len);
        }
    expect_grads_close(pieces, as_vectors(whole), 1e-5, "N=" + std::to_string(N));
  }
}

TEST_P(Wkv7BackwardTest, GradientsAccumulateAndEmptyDstateIsZero) {
  Inputs in = make_inputs(2, 70, 2, 64, Decay::mixed, 77);
  const Grads fresh = run_backward(*ops, in);
  Grads start;
  for (int q = 0; q < 6; ++q) start.g[q] = test::random_vector(in.r.size(), 80 + q);
  const Grads summed = run_backward(*ops, in, true, &start);
  Grads diff = summed;
  for (int q = 0; q < 6; ++q)
    for (size_t i = 0; i < diff.g[q].size(); ++i) diff.g[q][i] -= start.g[q][i];
  expect_grads_close(diff, as_vectors(fresh), 1e-6, "accumulated", 6);

  const Grads none = run_backward(*ops, in, false);
  std::fill(in.dstate.begin(), in.dstate.end(), 0.0f);
  expect_grads_close(none, as_vectors(run_backward(*ops, in)), 0.0, "empty dstate", 6);
}

TEST_P(Wkv7BackwardTest, BadArgumentsThrow) {
  const std::vector<float> x = test::random_vector(48, 5), st = test::random_vector(256, 6);
  const Shape seq{1, 3, 16};
  DevTensor y(*ops, seq, x.data()), g(*ops, seq, x.data()), state(*ops, Shape{1, 2, 8, 8}, st.data());
  DevTensor short_g(*ops, Shape{1, 2, 16}, x.data()), bad_dstate(*ops, Shape{1, 1, 8, 8}, st.data());
  DevTensor short_reset(*ops, Shape{1, 2}, nullptr, DType::I32);
  const Wkv7Grads ok{g.t, g.t, g.t, g.t, g.t, g.t, state.t};
  Wkv7Grads short_dk = ok, missing_da = ok, wrong_dstate = ok;
  short_dk.dk = short_g.t, missing_da.da = Tensor{}, wrong_dstate.dstate = bad_dstate.t;
  const Tensor t = y.t;
  EXPECT_THROW(ops->wkv7_backward(short_dk, t, state.t, t, t, t, t, t, t, Tensor{}), Error);
  EXPECT_THROW(ops->wkv7_backward(missing_da, t, state.t, t, t, t, t, t, t, Tensor{}), Error);
  EXPECT_THROW(ops->wkv7_backward(wrong_dstate, t, state.t, t, t, t, t, t, t, Tensor{}), Error);
  EXPECT_THROW(ops->wkv7_backward(ok, t, state.t, t, t, t, t, t, t, short_reset.t), Error);
  EXPECT_THROW(ops->wkv7_backward(ok, t, bad_dstate.t, t, t, t, t, t, t, Tensor{}), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, Wkv7BackwardTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
