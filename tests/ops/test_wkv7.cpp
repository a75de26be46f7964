// WKV-7 on every backend: the scalar reference against an independent matrix-form oracle, every
// backend against the reference (decays near 0.545, near 1 and mixed; long sequences; several
// heads and sequences; head sizes 64 and others), and the properties the model relies on: pieces
// carrying the state equal one pass, a reset equals a fresh start, decode T times equals forward.
// A new backend (CUDA) joins by adding its factory to backends(); tensors travel through the
// backend's own alloc/upload/download.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backend/ops.h"
#include "core/error.h"
#include "test_util.h"

namespace arwkv {
namespace {

constexpr double kTol = 1e-5;  // fp32 state and sums against the double reference

enum class Decay { low, high, mixed };

// Inputs shaped as the model makes them: per head kk of unit length, a = −kk, b = kk ⊙ iclr.
struct Inputs {
  int64_t B, T, H, N;
  std::vector<float> r, w, k, v, a, b, state;
  std::vector<int32_t> reset;
  int64_t C() const { return H * N; }
};

Inputs make_inputs(int64_t B, int64_t T, int64_t H, int64_t N, Decay decay, uint64_t seed, bool zero_state = false) {
  Inputs in{B, T, H, N, {}, {}, {}, {}, {}, {}, {}, {}};
  const size_t n = static_cast<size_t>(B * T * H * N);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), u01(0.0f, 1.0f);
  std::normal_distribution<float> z(0.0f, 3.0f);
  for (auto* x : {&in.r, &in.w, &in.k, &in.v, &in.a, &in.b}) x->resize(n);
  for (size_t i = 0; i < n; ++i) {
    in.r[i] = u(rng);
    in.k[i] = u(rng);
    in.v[i] = u(rng);
    if (decay == Decay::low) in.w[i] = 0.545f + 0.01f * u01(rng);
    if (decay == Decay::high) in.w[i] = 1.0f - 1e-3f * u01(rng);
    if (decay == Decay::mixed) in.w[i] = std::exp(-0.606531f / (1.0f + std::exp(-z(rng))));
  }
  for (size_t row = 0; row < n / static_cast<size_t>(N); ++row) {
    float* kk = in.a.data() + row * static_cast<size_t>(N);
    double norm = 0.0;
    for (int64_t j = 0; j < N; ++j) {
      kk[j] = u(rng);
      norm += static_cast<double>(kk[j]) * kk[j];
    }
    for (int64_t j = 0; j < N; ++j) {
      kk[j] = static_cast<float>(kk[j] / std::sqrt(norm));
      in.b[row * static_cast<size_t>(N) + static_cast<size_t>(j)] = kk[j] * u01(rng);
      kk[j] = -kk[j];
    }
  }
  in.state = zero_state ? std::vector<float>(static_cast<size_t>(B * H * N * N), 0.0f)
                        : test::random_vector(static_cast<size_t>(B * H * N * N), seed + 1, -0.5f, 0.5f);
  return in;
}

// Tokens [t0, t1) of every sequence, with the given starting state and no resets.
Inputs slice(const Inputs& in, int64_t t0, int64_t t1, const std::vector<float>& state) {
  Inputs out{in.B, t1 - t0, in.H, in.N, {}, {}, {}, {}, {}, {}, state, {}};
  const int64_t C = in.C();
  auto cut = [&](const std::vector<float>& x, std::vector<float>& dst) {
    for (int64_t bi = 0; bi < in.B; ++bi)
      dst.insert(dst.end(), x.begin() + (bi * in.T + t0) * C, x.begin() + (bi * in.T + t1) * C);
  };
  cut(in.r, out.r), cut(in.w, out.w), cut(in.k, out.k), cut(in.v, out.v), cut(in.a, out.a), cut(in.b, out.b);
  return out;
}

struct Result {
  std::vector<float> y, state;
};

// A tensor on one backend, filled from host data.
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

// wkv7_forward over all T tokens, or T calls of wkv7_decode when decode is set.
Result run(Ops& ops, const Inputs& in, bool decode = false) {
  const Shape seq{in.B, in.T, in.C()};
  DevTensor y(ops, seq, nullptr), st(ops, Shape{in.B, in.H, in.N, in.N}, in.state.data());
  DevTensor r(ops, seq, in.r.data()), w(ops, seq, in.w.data()), k(ops, seq, in.k.data()), v(ops, seq, in.v.data()),
      a(ops, seq, in.a.data()), b(ops, seq, in.b.data());
  if (!decode) {
    Tensor reset{};
    std::unique_ptr<DevTensor> rs;
    if (!in.reset.empty()) rs = std::make_unique<DevTensor>(ops, Shape{in.B, in.T}, in.reset.data(), DType::I32);
    ops.wkv7_forward(y.t, st.t, r.t, w.t, k.t, v.t, a.t, b.t, rs ? rs->t : reset);
    return {fetch(ops, y.t), fetch(ops, st.t)};
  }
  std::vector<float> ys(static_cast<size_t>(seq.numel()));
  const Shape tok{in.B, in.C()};
  DevTensor yt(ops, tok, nullptr);
  for (int64_t t = 0; t < in.T; ++t) {
    const Inputs one = slice(in, t, t + 1, {});
    DevTensor r1(ops, tok, one.r.data()), w1(ops, tok, one.w.data()), k1(ops, tok, one.k.data()),
        v1(ops, tok, one.v.data()), a1(ops, tok, one.a.data()), b1(ops, tok, one.b.data());
    ops.wkv7_decode(yt.t, st.t, r1.t, w1.t, k1.t, v1.t, a1.t, b1.t);
    const std::vector<float> yh = fetch(ops, yt.t);
    for (int64_t bi = 0; bi < in.B; ++bi)
      std::copy(yh.begin() + bi * in.C(), yh.begin() + (bi + 1) * in.C(), ys.begin() + (bi * in.T + t) * in.C());
  }
  return {ys, fetch(ops, st.t)};
}

// The largest error of any row of `row` values, relative to that row's largest reference value:
// early tokens with small outputs are checked as strictly as late ones with large outputs.
double max_row_error(const std::vector<float>& got, const std::vector<float>& want, int64_t row) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (size_t o = 0; o + static_cast<size_t>(row) <= want.size(); o += static_cast<size_t>(row))
    worst = std::max(worst, test::max_rel_error(got.data() + o, want.data() + o, static_cast<size_t>(row)));
  return worst;
}

void expect_close(const Result& got, const Result& want, const Inputs& in, double tol, const std::string& what) {
  EXPECT_LE(max_row_error(got.y, want.y, in.N), tol) << what << ": y";
  EXPECT_LE(max_row_error(got.state, want.state, in.N * in.N), tol) << what << ": state";
}

// An oracle independent of the backends' loops: per head, the matrix form
// S_t = S_{t-1}·(diag(w_t) + a_t·b_tᵀ) + v_t·k_tᵀ and y_t = S_t·r_t, with full N×N products in double.
Result matrix_oracle(const Inputs& in) {
  const int64_t N = in.N, C = in.C();
  Result out{std::vector<float>(in.r.size()), in.state};
  for (int64_t bi = 0; bi < in.B; ++bi)
    for (int64_t h = 0; h < in.H; ++h) {
      std::vector<double> S(in.state.begin() + (bi * in.H + h) * N * N, in.state.begin() + (bi * in.H + h + 1) * N * N);
      for (int64_t t = 0; t < in.T; ++t) {
        if (!in.reset.empty() && in.reset[static_cast<size_t>(bi * in.T + t)]) std::fill(S.begin(), S.end(), 0.0);
        const size_t o = static_cast<size_t>((bi * in.T + t) * C + h * N);
        std::vector<double> M(static_cast<size_t>(N * N)), next(static_cast<size_t>(N * N), 0.0);
        for (int64_t p = 0; p < N; ++p)
          for (int64_t q = 0; q < N; ++q)
            M[p * N + q] = (p == q ? in.w[o + p] : 0.0) + static_cast<double>(in.a[o + p]) * in.b[o + q];
        for (int64_t i = 0; i < N; ++i)
          for (int64_t q = 0; q < N; ++q) {
            double acc = static_cast<double>(in.v[o + i]) * in.k[o + q];
            for (int64_t p = 0; p < N; ++p) acc += S[i * N + p] * M[p * N + q];
            next[i * N + q] = acc;
          }
        S = next;
        for (int64_t i = 0; i < N; ++i) {
          double acc = 0.0;
          for (int64_t q = 0; q < N; ++q) acc += S[i * N + q] * in.r[o + q];
          out.y[o + i] = static_cast<float>(acc);
        }
      }
      for (int64_t e = 0; e < N * N; ++e) out.state[(bi * in.H + h) * N * N + e] = static_cast<float>(S[e]);
    }
  return out;
}

TEST(Wkv7Reference, MatchesMatrixForm) {
  for (int64_t N : {1, 4, 9}) {
    Inputs in = make_inputs(2, 41, 3, N, Decay::mixed, 100 + N);
    in.reset.assign(static_cast<size_t>(in.B * in.T), 0);
    in.reset[17] = 1;                              // sequence 0, token 17
    in.reset[static_cast<size_t>(in.T + 0)] = 1;   // sequence 1, token 0
    in.reset[static_cast<size_t>(in.T + 30)] = 1;  // sequence 1, token 30
    const Result want = matrix_oracle(in);
    const Result got = run(*make_reference_ops(), in);
    expect_close(got, want, in, 1e-6, "N=" + std::to_string(N));
  }
}

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

class Wkv7Test : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ref = make_reference_ops();
  std::unique_ptr<Ops> ops = GetParam().make();
};

TEST_P(Wkv7Test, MatchesReference) {
  struct Case {
    int64_t B, T, H, N;
    Decay decay;
  };
  const Case cases[] = {{1, 1200, 2, 64, Decay::high}, {1, 1200, 2, 64, Decay::low}, {1, 1000, 3, 64, Decay::mixed},
                        {3, 77, 5, 64, Decay::mixed},  {2, 50, 2, 16, Decay::mixed}, {2, 61, 3, 40, Decay::high},
                        {1, 33, 2, 7, Decay::low},     {1, 1, 9, 64, Decay::mixed},
                        {1, 40, 2, 128, Decay::mixed}, {2, 45, 2, 96, Decay::low}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const Inputs in = make_inputs(c.B, c.T, c.H, c.N, c.decay, seed++);
    expect_close(run(*ops, in), run(*ref, in), in, kTol,
                 "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " H=" + std::to_string(c.H) +
                     " N=" + std::to_string(c.N) + " decay=" + std::to_string(static_cast<int>(c.decay)));
  }
}

TEST_P(Wkv7Test, PiecesCarryingStateEqualOnePass) {
  for (int64_t N : {64, 24}) {
    const Inputs in = make_inputs(2, 300, 3, N, Decay::mixed, 7 + N);
    const Result whole = run(*ops, in);
    Result pieces{{}, in.state};
    std::vector<std::vector<float>> ys;
    const int64_t cuts[] = {0, 1, 100, 199, 300};
    for (int i = 0; i + 1 < 5; ++i) {
      const Inputs part = slice(in, cuts[i], cuts[i + 1], pieces.state);
      const Result r = run(*ops, part);
      ys.push_back(r.y);
      pieces.state = r.state;
    }
    for (int64_t bi = 0; bi < in.B; ++bi)  // pieces are [B, T_i, C]: put the tokens back in order
      for (int i = 0; i + 1 < 5; ++i) {
        const int64_t len = (cuts[i + 1] - cuts[i]) * in.C();
        pieces.y.insert(pieces.y.end(), ys[static_cast<size_t>(i)].begin() + bi * len,
                        ys[static_cast<size_t>(i)].begin() + (bi + 1) * len);
      }
    expect_close(pieces, whole, in, kTol, "N=" + std::to_string(N));
  }
}

TEST_P(Wkv7Test, ResetEqualsFreshStart) {
  const int64_t t0 = 137;
  Inputs in = make_inputs(2, 400, 3, 64, Decay::high, 21);
  in.reset.assign(static_cast<size_t>(in.B * in.T), 0);
  in.reset[static_cast<size_t>(in.T + t0)] = 1;  // sequence 1 only
  const Result got = run(*ops, in);

  // Sequence 1 from token t0 on, started from a zero state, against the same span of `got`.
  Inputs rest = slice(in, t0, in.T, {});
  rest.B = 1;
  const size_t C = static_cast<size_t>(in.C()), NN = static_cast<size_t>(in.N * in.N * in.H);
  for (auto* x : {&rest.r, &rest.w, &rest.k, &rest.v, &rest.a, &rest.b}) x->erase(x->begin(), x->begin() + x->size() / 2);
  rest.state.assign(NN, 0.0f);
  const Result fresh = run(*ops, rest);
  Result span{std::vector<float>(got.y.begin() + static_cast<int64_t>((in.T + t0) * C), got.y.end()),
              std::vector<float>(got.state.begin() + static_cast<int64_t>(NN), got.state.end())};
  expect_close(span, fresh, rest, kTol, "after the reset");

  // Sequence 0 has no reset: it equals a run without any.
  in.reset.clear();
  const Result plain = run(*ops, in);
  const auto half_y = static_cast<int64_t>(in.T * C);
  EXPECT_EQ(std::vector<float>(got.y.begin(), got.y.begin() + half_y),
            std::vector<float>(plain.y.begin(), plain.y.begin() + half_y));
}

TEST_P(Wkv7Test, DecodeEqualsForward) {
  for (int64_t N : {64, 16}) {
    const Inputs in = make_inputs(3, 70, 4, N, Decay::mixed, 40 + N);
    expect_close(run(*ops, in, true), run(*ref, in), in, kTol, "decode vs reference, N=" + std::to_string(N));
    expect_close(run(*ops, in, true), run(*ops, in), in, kTol, "decode vs forward, N=" + std::to_string(N));
  }
}

TEST_P(Wkv7Test, BadShapesThrow) {
  const std::vector<float> x16 = test::random_vector(48, 5), st = test::random_vector(256, 6);
  const Shape seq{1, 3, 16};
  DevTensor y(*ops, seq, nullptr), x(*ops, seq, x16.data());
  DevTensor not_square(*ops, Shape{1, 2, 8, 16}, st.data()), state(*ops, Shape{1, 2, 8, 8}, st.data());
  DevTensor short_reset(*ops, Shape{1, 2}, nullptr, DType::I32);
  EXPECT_THROW(ops->wkv7_forward(y.t, not_square.t, x.t, x.t, x.t, x.t, x.t, x.t, Tensor{}), Error);
  EXPECT_THROW(ops->wkv7_forward(y.t, state.t, x.t, x.t, x.t, x.t, x.t, x.t, short_reset.t), Error);
  EXPECT_THROW(ops->wkv7_decode(y.t, state.t, x.t, x.t, x.t, x.t, x.t, x.t), Error);  // decode takes [B, C]
}

INSTANTIATE_TEST_SUITE_P(Backends, Wkv7Test, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
