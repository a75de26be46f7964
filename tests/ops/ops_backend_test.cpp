// Every op of every fast backend against the scalar reference, on seeded random inputs with odd
// shapes. A new backend (CUDA) joins by adding its factory to backends(): tensors travel through
// the backend's own alloc/upload/download, so the checks are device-neutral.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "backend/ops.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::max_rel_error;
using test::random_vector;

constexpr double kTol = 1e-5;  // fp32 against double accumulation

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
};

std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{{"cpu", make_cpu_ops}, {"cuda_emulated", make_cuda_emulated_ops}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops});
  return out;
}

// A tensor that lives on one backend, filled from host data.
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

class OpsTest : public ::testing::TestWithParam<BackendCase> {
public:
  std::unique_ptr<Ops> ref = make_reference_ops();
  std::unique_ptr<Ops> fast = GetParam().make();

  // Runs op on both backends with the same inputs; returns the outputs (first tensor) of each.
  struct Arg {
    Shape shape;
    std::vector<float> f = {};
    std::vector<int32_t> i = {};
  };
  std::pair<std::vector<float>, std::vector<float>> run(std::vector<Arg> args,
                                                         const std::function<void(Ops&, std::vector<Tensor>&)>& op) {
    std::vector<float> results[2];
    Ops* both[2] = {ref.get(), fast.get()};
    for (int b = 0; b < 2; ++b) {
      std::vector<DevTensor> held;
      std::vector<Tensor> views;
      held.reserve(args.size());
      for (const Arg& a : args) {
        const bool is_int = !a.i.empty() || (a.f.empty() && a.shape.numel() == 0);
        held.emplace_back(*both[b], a.shape, is_int ? static_cast<const void*>(a.i.data()) : a.f.data(),
                          is_int ? DType::I32 : DType::F32);
        views.push_back(held.back().t);
      }
      op(*both[b], views);
      results[b] = fetch(*both[b], views[0]);
    }
    return {results[0], results[1]};
  }
};

TEST_P(OpsTest, Matmul) {
  uint64_t seed = 1;
  for (int64_t M : {1, 7, 130})
    for (int64_t N : {1, 37, 300})
      for (int mode = 0; mode < 3; ++mode) {  // plain, bias, bias + accumulate
        const int64_t K = 111;
        const bool bias = mode > 0, acc = mode == 2;
        auto [r, f] = run({{{M, N}, random_vector(M * N, ++seed)},
                           {{M, K}, random_vector(M * K, ++seed)},
                           {{N, K}, random_vector(N * K, ++seed)},
                           {{N}, random_vector(N, ++seed)}},
                          [&](Ops& o, std::vector<Tensor>& v) { o.matmul(v[0], v[1], v[2], bias ? &v[3] : nullptr, acc); });
        EXPECT_LT(max_rel_error(f, r), kTol) << "M=" << M << " N=" << N << " mode=" << mode;
      }
}

TEST_P(OpsTest, Embedding) {
  std::vector<int32_t> ids = {5, 0, 12, 5, 3, 12, 1};
  auto [r, f] = run({{{7, 111}, std::vector<float>(7 * 111)}, {{13, 111}, random_vector(13 * 111, 3)}, {{7}, {}, ids}},
                    [](Ops& o, std::vector<Tensor>& v) { o.embedding(v[0], v[1], v[2]); });
  EXPECT_EQ(f, r);
  std::vector<int32_t> bad = {13};
  DevTensor y(*fast, {1, 111}, nullptr), table(*fast, {13, 111}, nullptr), id(*fast, {1}, bad.data(), DType::I32);
  EXPECT_THROW(fast->embedding(y.t, table.t, id.t), Error);
}

TEST_P(OpsTest, Rmsnorm) {
  for (int64_t C : {1, 111, 576}) {
    auto [r, f] = run({{{7, C}, std::vector<float>(7 * C)}, {{7, C}, random_vector(7 * C, 4, -3, 3)},
                       {{C}, random_vector(C, 5)}},
                      [](Ops& o, std::vector<Tensor>& v) { o.rmsnorm(v[0], v[1], v[2], 1e-5f); });
    EXPECT_LT(max_rel_error(f, r), kTol) << "C=" << C;
    // In place (y = x), as the per-head q/k norms run: the same values as the reference's y.
    auto [ri, fi] = run({{{7, C}, random_vector(7 * C, 4, -3, 3)}, {{C}, random_vector(C, 5)}},
                        [](Ops& o, std::vector<Tensor>& v) { o.rmsnorm(v[0], v[0], v[1], 1e-5f); });
    EXPECT_LT(max_rel_error(fi, r), kTol) << "in place, C=" << C;
    EXPECT_LT(max_rel_error(ri, r), kTol) << "in place on the reference, C=" << C;
  }
}

TEST_P(OpsTest, Rope) {
  for (int head_dim : {16, 64, 128})
    for (float theta : {10000.0f, 1e6f}) {
      const int H = 3;
      const int64_t T = 7;
      std::vector<int32_t> pos = {0, 1, 2, 9, 40, 41, 300};
      auto [r, f] = run({{{T, H * head_dim}, random_vector(T * H * head_dim, 6)}, {{T}, {}, pos}},
                        [&](Ops& o, std::vector<Tensor>& v) { o.rope(v[0], v[1], H, head_dim, theta); });
      EXPECT_LT(max_rel_error(f, r), kTol) << "head_dim=" << head_dim;
      // With frequency factors (Llama 3's scaling): the same as unscaled where they are 1, and a
      // pair whose factor is 8 turns by an eighth of its unscaled angle.
      std::vector<float> ones(static_cast<size_t>(head_dim / 2), 1.0f), factors = random_vector(head_dim / 2, 8, 1, 8);
      auto [r1, f1] = run({{{T, H * head_dim}, random_vector(T * H * head_dim, 6)}, {{T}, {}, pos}, {{head_dim / 2}, ones}},
                          [&](Ops& o, std::vector<Tensor>& v) { o.rope(v[0], v[1], H, head_dim, theta, v[2]); });
      EXPECT_EQ(r1, r) << "head_dim=" << head_dim;
      EXPECT_LT(max_rel_error(f1, r), kTol) << "head_dim=" << head_dim;
      auto [rs, fs] = run({{{T, H * head_dim}, random_vector(T * H * head_dim, 6)}, {{T}, {}, pos}, {{head_dim / 2}, factors}},
                          [&](Ops& o, std::vector<Tensor>& v) { o.rope(v[0], v[1], H, head_dim, theta, v[2]); });
      EXPECT_LT(max_rel_error(fs, rs), kTol) << "head_dim=" << head_dim;
      EXPECT_GT(max_rel_error(rs, r), 1e-3) << "the factors changed nothing, head_dim=" << head_dim;
    }
}

// Query rows against keys: q_offset places them after a cache; key_start cuts documents.
void check_attention(OpsTest& self, int64_t T, int64_t q_offset, int H, int Hkv, int d,
                     std::vector<int32_t> key_start, uint64_t seed);

TEST_P(OpsTest, Attention) {
  for (int d : {16, 20, 64, 128}) {
    check_attention(*this, 7, 0, 3, 1, d, {}, 10);
    check_attention(*this, 7, 5, 4, 2, d, {}, 11);
    check_attention(*this, 7, 0, 2, 2, d, {0, 0, 0, 3, 3, 5, 5}, 12);        // three documents
    check_attention(*this, 7, 4, 3, 3, d, {2, 2, 6, 6, 6, 6, 10}, 13);        // documents after a cache
    check_attention(*this, 1, 299, 3, 1, d, {}, 14);                          // decode a long context
    check_attention(*this, 37, 0, 9, 3, d, {}, 15);
  }
}

TEST_P(OpsTest, ElementWise) {
  const int64_t n = 7 * 111;
  for (int64_t len : {n, int64_t{40000}}) {
    for (Activation act : {Activation::Silu, Activation::GeluTanh}) {
      auto [r, f] = run({{{len}, std::vector<float>(len)}, {{len}, random_vector(len, 20, -12, 12)},
                         {{len}, random_vector(len, 21)}},
                        [act](Ops& o, std::vector<Tensor>& v) { o.glu(v[0], v[1], v[2], act); });
      EXPECT_LT(max_rel_error(f, r), kTol) << static_cast<int>(act);
    }
    auto [r2, f2] = run({{{len}, random_vector(len, 22)}, {{len}, random_vector(len, 23)}},
                        [](Ops& o, std::vector<Tensor>& v) { o.add(v[0], v[0], v[1]); });  // y aliases a
    EXPECT_LT(max_rel_error(f2, r2), kTol);
    auto [r3, f3] = run({{{len}, std::vector<float>(len)}, {{len}, random_vector(len, 24)}},
                        [](Ops& o, std::vector<Tensor>& v) { o.copy(v[0], v[1]); });
    EXPECT_EQ(f3, r3);
  }
}

TEST_P(OpsTest, ShapeMismatchThrows) {
  DevTensor y(*fast, {3, 5}, nullptr), x(*fast, {3, 4}, nullptr), w(*fast, {6, 4}, nullptr);
  EXPECT_THROW(fast->matmul(y.t, x.t, w.t), Error);
  EXPECT_THROW(fast->add(y.t, y.t, x.t), Error);
  DevTensor q(*fast, {2, 64}, nullptr), k(*fast, {3, 64}, nullptr);
  EXPECT_THROW(fast->attention(q.t, q.t, k.t, k.t, Tensor{}, {.n_heads = 2, .n_kv_heads = 1, .head_dim = 32,
                                                               .q_offset = 2}),
               Error);  // 2 queries at offset 2 need 4 keys
}

void check_attention(OpsTest& self, int64_t T, int64_t q_offset, int H, int Hkv, int d,
                     std::vector<int32_t> key_start, uint64_t seed) {
  const int64_t S = q_offset + T;
  AttentionArgs a{.n_heads = H, .n_kv_heads = Hkv, .head_dim = d, .q_offset = q_offset};
  const bool masked = !key_start.empty();
  std::vector<float> res[2];
  Ops* both[2] = {self.ref.get(), self.fast.get()};
  auto q = random_vector(T * H * d, seed, -2, 2), k = random_vector(S * Hkv * d, seed + 1, -2, 2),
       v = random_vector(S * Hkv * d, seed + 2);
  for (int b = 0; b < 2; ++b) {
    Ops& o = *both[b];
    DevTensor out(o, {T, H * d}, nullptr), qt(o, {T, H * d}, q.data()), kt(o, {S, Hkv * d}, k.data()),
        vt(o, {S, Hkv * d}, v.data());
    DevTensor ks(o, {masked ? T : 0}, masked ? key_start.data() : nullptr, DType::I32);
    o.attention(out.t, qt.t, kt.t, vt.t, masked ? ks.t : Tensor{}, a);
    res[b] = fetch(o, out.t);
  }
  EXPECT_LT(max_rel_error(res[1], res[0]), kTol)
      << "T=" << T << " offset=" << q_offset << " H=" << H << "/" << Hkv << " d=" << d << " masked=" << masked;
}

INSTANTIATE_TEST_SUITE_P(Backends, OpsTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
