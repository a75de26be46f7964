// Compact weights (core/tensor.h: f16, bf16 and the GGUF quantisation blocks) in matmul, its input
// gradient and embedding, on every backend, against the same op on the weight dequantised to fp32
// by formats/quant.cpp (whose decoders are checked against the gguf package). Shapes are odd: M and
// N are not multiples of anything, K is a few whole blocks (the format requires whole blocks).
//
// Tolerances: the dequantised values are exact in fp32, so a compact product differs from the fp32
// one only by summation order: the reference backend (double sums) must agree exactly, the fast
// backends within 1e-5 of the largest sum of absolute terms of an output (Σ_k |x·w| + |bias| + |y|:
// fp32 rounding grows with it, and a single output may cancel to near zero); embedding copies
// decoded values and must agree exactly, which checks every element of every block decoder.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <functional>
#include <random>

#include "backend/ops.h"
#include "core/half.h"
#include "formats/quant.h"
#include "backend_cases.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::random_vector;

constexpr double kTol = 1e-5;

const DType kCompact[] = {DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                          DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

void put_f16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  p[0] = static_cast<uint8_t>(h & 0xff);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// N rows of K elements of dtype t: random quants with sane scales (random bytes would make some
// f16 scales infinite or NaN).
std::vector<uint8_t> random_weight(DType t, int64_t N, int64_t K, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t bytes = static_cast<size_t>(N) * dtype_row_bytes(t, K);
  std::vector<uint8_t> w(bytes);
  if (!dtype_is_block(t)) {
    const std::vector<float> v = random_vector(static_cast<size_t>(N * K), seed);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = t == DType::F16 ? fp32_to_fp16(v[i]) : fp32_to_bf16(v[i]);
      w[2 * i] = static_cast<uint8_t>(h & 0xff);
      w[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
    return w;
  }
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(0.002f, 0.05f);
  const size_t bb = dtype_block_bytes(t);
  for (size_t b = 0; b < bytes / bb; ++b) {
    uint8_t* blk = w.data() + b * bb;
    switch (t) {
      case DType::Q6_K: put_f16(blk + 208, scale(rng) / 8); break;
      case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K:
        put_f16(blk, scale(rng) / (t == DType::Q4_K || t == DType::Q5_K ? 8 : 1));
        put_f16(blk + 2, -scale(rng));
        break;
      default: put_f16(blk, scale(rng)); break;
    }
  }
  return w;
}

std::vector<float> dequantized(DType t, const std::vector<uint8_t>& w, int64_t N, int64_t K) {
  std::vector<float> out(static_cast<size_t>(N * K));
  const size_t rb = dtype_row_bytes(t, K);
  for (int64_t r = 0; r < N; ++r) dequantize_row(t, w.data() + r * rb, out.data() + r * K, K);
  return out;
}

// Ks for dtype t: whole blocks, an odd number of them.
std::vector<int64_t> ks_for(DType t) {
  const int64_t b = dtype_block(t);
  return b == 1 ? std::vector<int64_t>{111, 577} : std::vector<int64_t>{b * 3, b * 5};
}

// max |got − want| / max over outputs (m, n) of Σ_k |a[m, k]·b[n, k]| + |c[m, n]| + |d[n]| (b as
// [N, K] when b_rows, else [K, N]).
double err_vs_terms(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& a,
                    const std::vector<float>& b, int64_t M, int64_t N, int64_t K, bool b_rows,
                    const std::vector<float>* c, const std::vector<float>* d) {
  double err = 0.0, scale = 1e-30;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = (c ? std::fabs((*c)[m * N + n]) : 0.0) + (d ? std::fabs((*d)[n]) : 0.0);
      for (int64_t k = 0; k < K; ++k) s += std::fabs(double{a[m * K + k]} * (b_rows ? b[n * K + k] : b[k * N + n]));
      scale = std::max(scale, s);
    }
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double{got[i]} - want[i]));
  return err / scale;
}

struct DevTensor {
  Buffer buf;
  Tensor t;
  DevTensor(Ops& ops, Shape s, const void* host, DType dt = DType::F32) {
    t = Tensor{nullptr, s, dt, ops.device()};
    buf = ops.alloc(t.nbytes());
    t.data = buf.data();
    if (host) ops.upload(t, host);
  }
};

std::vector<float> fetch(Ops& ops, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops.download(out.data(), t);
  return out;
}

using test::BackendCase;
using test::backends;

class CompactTest : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ref = make_reference_ops();
  std::unique_ptr<Ops> ops = GetParam().make();
  bool exact() const { return GetParam().name == "reference"; }
};

// y = x·wᵀ (+ bias, + accumulate) with w compact on the backend against fp32 w on the reference.
TEST_P(CompactTest, MatmulEqualsDequantisedFp32) {
  uint64_t seed = 100;
  for (DType t : kCompact)
    for (int64_t K : ks_for(t))
      for (int64_t M : {1, 7, 130})
        for (int64_t N : {1, 37, 300}) {
          const int mode = static_cast<int>(seed % 3);  // plain, bias, bias + accumulate
          const auto wq = random_weight(t, N, K, ++seed);
          const auto w32 = dequantized(t, wq, N, K);
          const auto x = random_vector(static_cast<size_t>(M * K), ++seed);
          const auto y0 = random_vector(static_cast<size_t>(M * N), ++seed);
          const auto bias = random_vector(static_cast<size_t>(N), ++seed);
          auto run = [&](Ops& o, const void* w, DType dt) {
            DevTensor y(o, {M, N}, y0.data()), xd(o, {M, K}, x.data()), wd(o, {N, K}, w, dt), bd(o, {N}, bias.data());
            o.matmul(y.t, xd.t, wd.t, mode > 0 ? &bd.t : nullptr, mode == 2);
            return fetch(o, y.t);
          };
          const auto want = run(*ref, w32.data(), DType::F32), got = run(*ops, wq.data(), t);
          const std::string where = fmt::format("{} M={} N={} K={} mode={}", dtype_name(t), M, N, K, mode);
          if (exact())
            EXPECT_EQ(got, want) << where;
          else
            EXPECT_LT(err_vs_terms(got, want, x, w32, M, N, K, true, mode == 2 ? &y0 : nullptr,
                                   mode > 0 ? &bias : nullptr), kTol) << where;
        }
}

// dx = dy·w (and dx += with accumulate) for a frozen compact w; a weight gradient is refused.
TEST_P(CompactTest, InputGradientEqualsDequantisedFp32) {
  uint64_t seed = 200;
  for (DType t : kCompact)
    for (int64_t K : ks_for(t))
      for (int64_t M : {1, 7, 130})
        for (int64_t N : {1, 37, 300}) {
          const bool acc = seed % 2 == 0;
          const auto wq = random_weight(t, N, K, ++seed);
          const auto w32 = dequantized(t, wq, N, K);
          const auto x = random_vector(static_cast<size_t>(M * K), ++seed);
          const auto dy = random_vector(static_cast<size_t>(M * N), ++seed);
          const auto dx0 = random_vector(static_cast<size_t>(M * K), ++seed);
          auto run = [&](Ops& o, const void* w, DType dt) {
            DevTensor dx(o, {M, K}, dx0.data()), dyd(o, {M, N}, dy.data()), xd(o, {M, K}, x.data()),
                wd(o, {N, K}, w, dt);
            o.matmul_backward(dx.t, Tensor{}, Tensor{}, dyd.t, xd.t, wd.t, acc);
            return fetch(o, dx.t);
          };
          const auto want = run(*ref, w32.data(), DType::F32), got = run(*ops, wq.data(), t);
          const std::string where = fmt::format("{} M={} N={} K={} acc={}", dtype_name(t), M, N, K, acc);
          if (exact()) {
            EXPECT_EQ(got, want) << where;
          } else {  // dx[m, k] sums dy[m, n]·w[n, k] over n: w read as [K, N] through its transpose
            std::vector<float> wt(static_cast<size_t>(N * K));
            for (int64_t n = 0; n < N; ++n)
              for (int64_t k = 0; k < K; ++k) wt[k * N + n] = w32[n * K + k];
            EXPECT_LT(err_vs_terms(got, want, dy, wt, M, K, N, true, acc ? &dx0 : nullptr, nullptr), kTol) << where;
          }
        }
  const auto wq = random_weight(DType::Q8_0, 5, 64, 1);
  DevTensor dw(*ops, {5, 64}, nullptr), dy(*ops, {3, 5}, nullptr), x(*ops, {3, 64}, nullptr),
      w(*ops, {5, 64}, wq.data(), DType::Q8_0);
  EXPECT_THROW(ops->matmul_backward(Tensor{}, dw.t, Tensor{}, dy.t, x.t, w.t), Error);
}

// Every row of a compact table through embedding equals formats/quant.cpp's decoding, bit for bit.
TEST_P(CompactTest, EmbeddingDecodesEveryElement) {
  uint64_t seed = 300;
  for (DType t : kCompact) {
    const int64_t V = 13, C = ks_for(t)[1];
    const auto wq = random_weight(t, V, C, ++seed);
    const auto want_table = dequantized(t, wq, V, C);
    std::vector<int32_t> ids(V);
    for (int64_t i = 0; i < V; ++i) ids[i] = static_cast<int32_t>((i * 5) % V);
    DevTensor y(*ops, {V, C}, nullptr), table(*ops, {V, C}, wq.data(), t), id(*ops, {V}, ids.data(), DType::I32);
    ops->embedding(y.t, table.t, id.t);
    std::vector<float> want(static_cast<size_t>(V * C));
    for (int64_t i = 0; i < V; ++i)
      std::copy_n(want_table.begin() + ids[i] * C, C, want.begin() + i * C);
    EXPECT_EQ(fetch(*ops, y.t), want) << dtype_name(t);
  }
}

TEST_P(CompactTest, RefusesPartialBlocks) {
  std::vector<uint8_t> bytes(4 * 34);
  DevTensor y(*ops, {2, 4}, nullptr), x(*ops, {2, 40}, nullptr);
  const Tensor w{bytes.data(), {4, 32}, DType::Q8_0, ops->device()};
  Tensor bad = w;
  bad.shape = Shape{4, 40};  // 40 is not a whole number of 32-element blocks
  EXPECT_THROW(ops->matmul(y.t, x.t, bad), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, CompactTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
