// The fused losses (cross-entropy, KL over the full vocabulary and over the teacher's top k, the
// align loss) on every backend against the direct formulas written here in double precision
// (softmax as exp(z)/Σexp(z), KL as Σ p log(p/q)), their gradients against central finite
// differences of those formulas; masked rows; logits shifted by 1000 (stability); dlogits aliasing
// the logits; the fast backends against the reference at vocabulary size. Tolerances: 1e-6
// relative for the reference (double inside), 1e-5 for fp32 backends.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backend/ops.h"
#include "test_backward_util.h"

namespace arwkv {
namespace {

using test::DevTensor;
using test::fetch;
using test::numeric_grad;
using test::random_vector;
using test::rel_error;
using test::to_double;

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
  double tol;
};

std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{{"reference", make_reference_ops, 1e-6},
                               {"cpu", make_cpu_ops, 1e-5},
                               {"cuda_emulated", make_cuda_emulated_ops, 1e-5}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops, 1e-5});
  return out;
}

std::vector<double> softmax(const std::vector<double>& z, size_t o, size_t n, double tau) {
  std::vector<double> p(n);
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) sum += p[j] = std::exp(z[o + j] / tau);
  for (auto& x : p) x /= sum;
  return p;
}

// The direct per-row losses; kind: 0 cross-entropy, 1 KL, 2 top-k KL, 3 align.
struct Case {
  int kind;
  int64_t R, V, K;
  double tau;
  std::vector<double> z, teacher;  // student [R, V]; teacher [R, V] or [R, K] (or [R, C] for align)
  std::vector<int32_t> targets, ids, mask;
  double row_loss(int64_t r) const {
    if (!mask[r]) return 0.0;
    const size_t o = static_cast<size_t>(r * V);
    if (kind == 0) return -std::log(softmax(z, o, V, 1.0)[targets[r]]);
    if (kind == 3) {
      double s = 0.0;
      for (int64_t c = 0; c < V; ++c) s += std::pow(teacher[o + c] - z[o + c], 2);
      return s / V;
    }
    const auto ps = softmax(z, o, V, tau);
    const auto pt = softmax(teacher, kind == 1 ? o : static_cast<size_t>(r * K), kind == 1 ? V : K, tau);
    double kl = 0.0;
    for (int64_t j = 0; j < (kind == 1 ? V : K); ++j) kl += pt[j] * std::log(pt[j] / ps[kind == 1 ? j : ids[r * K + j]]);
    return tau * tau * kl;
  }
  double total() const {
    double s = 0.0;
    for (int64_t r = 0; r < R; ++r) s += row_loss(r);
    return s;
  }
};

Case make_case(int kind, int64_t R, int64_t V, int64_t K, double tau, float spread, uint64_t seed, float offset = 0) {
  Case c{kind, R, V, K, tau, {}, {}, {}, {}, {}};
  std::mt19937 rng(static_cast<uint32_t>(seed));
  auto shifted = [&](size_t n, uint64_t s) {
    auto v = random_vector(n, s, -spread, spread);
    for (auto& x : v) x += offset;
    return to_double(v);
  };
  c.z = shifted(static_cast<size_t>(R * V), seed + 1);
  c.teacher = shifted(static_cast<size_t>(R * (kind == 2 ? K : V)), seed + 2);
  for (int64_t r = 0; r < R; ++r) {
    c.targets.push_back(static_cast<int32_t>(rng() % V));
    c.mask.push_back(r % 3 != 1);  // every third row is padding
    std::vector<int32_t> perm(static_cast<size_t>(V));
    for (int64_t j = 0; j < V; ++j) perm[j] = static_cast<int32_t>(j);
    std::shuffle(perm.begin(), perm.end(), rng);
    if (kind == 2) c.ids.insert(c.ids.end(), perm.begin(), perm.begin() + K);
  }
  if (R > 4) c.targets[4] = 12345678;  // junk under a masked row: never read
  return c;
}

// Runs the op of c.kind on ops; returns loss [R] and dlogits [R, V] (in place on the logits when alias).
std::pair<std::vector<float>, std::vector<float>> run(Ops& ops, const Case& c, float grad_scale, bool alias) {
  std::vector<float> zf(c.z.begin(), c.z.end()), tf(c.teacher.begin(), c.teacher.end());
  DevTensor z(ops, {c.R, c.V}, zf.data()), d(ops, {c.R, c.V}, nullptr), loss(ops, {c.R}, nullptr);
  DevTensor t(ops, {c.R, c.kind == 2 ? c.K : c.V}, tf.data()), mask(ops, {c.R}, c.mask.data(), DType::I32);
  DevTensor targets(ops, {c.R}, c.targets.data(), DType::I32);
  DevTensor ids(ops, {c.R, c.K}, c.kind == 2 ? c.ids.data() : nullptr, DType::I32);
  const Tensor dz = alias ? z.t : d.t;
  if (c.kind == 0) ops.cross_entropy(loss.t, dz, z.t, targets.t, mask.t, grad_scale);
  if (c.kind == 1) ops.kl_div(loss.t, dz, z.t, t.t, mask.t, static_cast<float>(c.tau), grad_scale);
  if (c.kind == 2) ops.kl_div_topk(loss.t, dz, z.t, ids.t, t.t, mask.t, static_cast<float>(c.tau), grad_scale);
  if (c.kind == 3) ops.align_loss(loss.t, dz, z.t, t.t, mask.t, grad_scale);
  return {fetch(ops, loss.t), fetch(ops, dz)};
}

class LossTest : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ops = GetParam().make();
  double tol = GetParam().tol;
};

const char* kNames[] = {"cross_entropy", "kl_div", "kl_div_topk", "align_loss"};

TEST_P(LossTest, AgainstDirectFormulas) {
  for (int kind = 0; kind < 4; ++kind)
    for (double tau : {1.0, 2.0}) {
      Case c = make_case(kind, 7, 13, 5, tau, 3.0f, 10 + kind);
      const float grad_scale = 0.25f;
      for (bool alias : {false, true}) {
        const auto [loss, dz] = run(*ops, c, grad_scale, alias);
        std::vector<double> want_loss(static_cast<size_t>(c.R));
        for (int64_t r = 0; r < c.R; ++r) want_loss[r] = c.row_loss(r);
        EXPECT_LT(rel_error(loss, want_loss), tol) << kNames[kind] << " tau " << tau;
        auto want_dz = numeric_grad(c.z, [&] { return grad_scale * c.total(); });
        EXPECT_LT(rel_error(dz, want_dz), tol) << kNames[kind] << " tau " << tau << " alias " << alias;
        for (int64_t r = 0; r < c.R; ++r)
          for (int64_t j = 0; j < c.V && !c.mask[r]; ++j) EXPECT_EQ(dz[r * c.V + j], 0.0f) << "masked row " << r;
      }
    }
}

// Logits around 1000 (or -1000) give the losses and gradients of logits around 0.
TEST_P(LossTest, StableForLargeLogits) {
  for (int kind = 0; kind < 3; ++kind)
    for (float offset : {1000.0f, -1000.0f}) {
      const Case base = make_case(kind, 7, 13, 5, 2.0, 3.0f, 20 + kind);
      Case big = make_case(kind, 7, 13, 5, 2.0, 3.0f, 20 + kind, offset);
      const auto [l0, d0] = run(*ops, base, 1.0f, false);
      const auto [l1, d1] = run(*ops, big, 1.0f, false);
      // The shifted inputs are rounded to fp32 near 1000 (steps of 6e-5), so agreement is to ~1e-4.
      EXPECT_LT(test::max_rel_error(l1, l0), 1e-3) << kNames[kind];
      EXPECT_LT(test::max_rel_error(d1, d0), 1e-3) << kNames[kind];
    }
}

TEST_P(LossTest, KnownValues) {
  // Uniform logits: cross-entropy log V; identical student and teacher: KL 0 and no gradient.
  const int64_t V = 1000;
  std::vector<float> z(V, 0.5f), loss(1), g(V);
  int32_t target = 17, one = 1;
  DevTensor zt(*ops, {1, V}, z.data()), dz(*ops, {1, V}, nullptr), lt(*ops, {1}, nullptr);
  DevTensor tt(*ops, {1}, &target, DType::I32), mt(*ops, {1}, &one, DType::I32);
  ops->cross_entropy(lt.t, Tensor{}, zt.t, tt.t, mt.t, 1.0f);
  EXPECT_NEAR(fetch(*ops, lt.t)[0], std::log(1000.0), 1e-5);
  auto zr = random_vector(V, 3, -5, 5);
  DevTensor zs(*ops, {1, V}, zr.data()), zt2(*ops, {1, V}, zr.data());
  ops->kl_div(lt.t, dz.t, zs.t, zt2.t, Tensor{}, 1.5f, 1.0f);
  EXPECT_NEAR(fetch(*ops, lt.t)[0], 0.0, 1e-6);
  for (float x : fetch(*ops, dz.t)) EXPECT_NEAR(x, 0.0, 1e-7);
}

TEST_P(LossTest, BadTargetThrows) {
  std::vector<float> z(2 * 5, 0.0f);
  std::vector<int32_t> targets = {1, 5};
  DevTensor zt(*ops, {2, 5}, z.data()), lt(*ops, {2}, nullptr), tt(*ops, {2}, targets.data(), DType::I32);
  EXPECT_THROW(ops->cross_entropy(lt.t, Tensor{}, zt.t, tt.t, Tensor{}, 1.0f), Error);
  DevTensor short_loss(*ops, {1}, nullptr);
  targets[1] = 0;
  DevTensor ok(*ops, {2}, targets.data(), DType::I32);
  EXPECT_THROW(ops->cross_entropy(short_loss.t, Tensor{}, zt.t, ok.t, Tensor{}, 1.0f), Error);
}

// At vocabulary size, with the threaded paths: every backend against the reference.
TEST_P(LossTest, AgainstReferenceAtScale) {
  auto ref = make_reference_ops();
  for (int kind = 0; kind < 4; ++kind) {
    Case c = make_case(kind, 37, 5003, 64, 2.0, 8.0f, 30 + kind);
    const auto [l_ref, d_ref] = run(*ref, c, 1.0f / 37, false);
    const auto [l, d] = run(*ops, c, 1.0f / 37, true);
    EXPECT_LT(test::max_rel_error(l, l_ref), 1e-5) << kNames[kind];
    EXPECT_LT(test::max_rel_error(d, d_ref), 1e-5) << kNames[kind];
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LossTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
