// Every backward op of every fast backend against the scalar reference (itself checked against
// finite differences in test_backward*.cpp), on seeded random inputs with odd shapes large enough
// to take the multi-threaded paths. Gradients that accumulate start from random values. A new
// backend (CUDA) joins by adding its factory to backends(): tensors travel through the backend's
// own alloc/upload/download.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "backend/ops.h"
#include "test_backward_util.h"

namespace arwkv {
namespace {

using test::DevTensor;
using test::fetch;
using test::random_vector;

constexpr double kTol = 1e-5;  // fp32 against the double reference, per tensor relative to its largest value

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Ops>()> make;
};

std::vector<BackendCase> backends() {
  std::vector<BackendCase> out{{"cpu", make_cpu_ops}, {"cuda_emulated", make_cuda_emulated_ops}};
  if (cuda_available()) out.push_back({"cuda", make_cuda_ops});
  return out;
}

// One argument: F32 values, or I32 values; an empty shape stands for an empty tensor (Tensor{}).
struct Arg {
  Shape shape;
  std::vector<float> f = {};
  std::vector<int32_t> i = {};
};

Arg rnd(Shape s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return {s, random_vector(static_cast<size_t>(s.numel()), seed, lo, hi)};
}
Arg none() { return {Shape{}, {}, {}}; }

class BackwardBackends : public ::testing::TestWithParam<BackendCase> {
 public:
  std::unique_ptr<Ops> ref = make_reference_ops();
  std::unique_ptr<Ops> fast = GetParam().make();

  // Runs op on both backends with the same inputs and expects every listed tensor to agree.
  void check(const std::string& what, const std::vector<Arg>& args, const std::vector<int>& outputs,
             const std::function<void(Ops&, std::vector<Tensor>&)>& op) {
    std::vector<std::vector<float>> res[2];
    Ops* both[2] = {ref.get(), fast.get()};
    for (int b = 0; b < 2; ++b) {
      std::vector<DevTensor> held;
      std::vector<Tensor> views;
      held.reserve(args.size());
      for (const Arg& a : args) {
        const bool is_int = !a.i.empty();
        held.emplace_back(*both[b], a.shape, is_int ? static_cast<const void*>(a.i.data()) : a.f.data(),
                          is_int ? DType::I32 : DType::F32);
        views.push_back(a.shape.ndim == 0 ? Tensor{} : held.back().t);
      }
      op(*both[b], views);
      for (int o : outputs) res[b].push_back(fetch(*both[b], views[static_cast<size_t>(o)]));
    }
    for (size_t o = 0; o < outputs.size(); ++o)
      EXPECT_LT(test::max_rel_error(res[1][o], res[0][o]), kTol) << what << ": argument " << outputs[o];
  }
};

TEST_P(BackwardBackends, Matmul) {
  uint64_t s = 100;
  for (int64_t M : {1, 37, 130})
    for (int64_t N : {1, 300})
      for (bool acc : {false, true}) {
        const int64_t K = 111;
        check("matmul M=" + std::to_string(M) + " N=" + std::to_string(N),
              {rnd({M, K}, ++s), rnd({N, K}, ++s), rnd({N}, ++s), rnd({M, N}, ++s), rnd({M, K}, ++s), rnd({N, K}, ++s)},
              {0, 1, 2}, [&](Ops& o, std::vector<Tensor>& v) { o.matmul_backward(v[0], v[1], v[2], v[3], v[4], v[5], acc); });
      }
}

TEST_P(BackwardBackends, Embedding) {
  std::vector<int32_t> ids(300);
  std::mt19937 rng(5);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % 50);
  check("embedding", {rnd({50, 111}, 1), rnd({300, 111}, 2), {{300}, {}, ids}}, {0},
        [](Ops& o, std::vector<Tensor>& v) { o.embedding_backward(v[0], v[1], v[2]); });
}

TEST_P(BackwardBackends, RmsnormSiluTanhSigmoid) {
  // Not C = 1: there dx = s·dy·w·eps/(x² + eps) is all cancellation, which fp32 cannot resolve.
  for (int64_t C : {3, 111, 576})
    for (bool acc : {false, true})
      check("rmsnorm C=" + std::to_string(C),
            {rnd({33, C}, 1), rnd({C}, 2), rnd({33, C}, 3), rnd({33, C}, 4, -3, 3), rnd({C}, 5)}, {0, 1},
            [&](Ops& o, std::vector<Tensor>& v) { o.rmsnorm_backward(v[0], v[1], v[2], v[3], v[4], 1e-5f, acc); });
  for (int64_t n : {int64_t{777}, int64_t{40000}}) {
    for (Activation act : {Activation::Silu, Activation::GeluTanh})
      check(act == Activation::Silu ? "glu silu" : "glu gelu",
            {rnd({n}, 6), rnd({n}, 7), rnd({n}, 8), rnd({n}, 9, -12, 12), rnd({n}, 10)}, {0, 1},
            [act](Ops& o, std::vector<Tensor>& v) { o.glu_backward(v[0], v[1], v[2], v[3], v[4], act); });
    check("tanh", {rnd({n}, 11), rnd({n}, 12)}, {0},
          [](Ops& o, std::vector<Tensor>& v) { o.tanh_backward(v[0], v[0], v[1]); });
    check("sigmoid", {rnd({n}, 13), rnd({n}, 14, 0, 1)}, {0},
          [](Ops& o, std::vector<Tensor>& v) { o.sigmoid_backward(v[0], v[0], v[1]); });
  }
}

TEST_P(BackwardBackends, TokenShift) {
  const int64_t P = 6, B = 3, T = 37, C = 130;
  std::vector<int32_t> reset(B * T, 0);
  reset[0] = reset[T + 11] = reset[2 * T + T - 1] = 1;
  for (bool with_reset : {false, true})
    check("token_shift reset " + std::to_string(with_reset),
          {rnd({B, T, C}, 1), rnd({B, C}, 2), rnd({P, C}, 3), rnd({P, B, T, C}, 4), rnd({B, T, C}, 5),
           rnd({B, C}, 6), rnd({P, C}, 7), with_reset ? Arg{{B, T}, {}, reset} : none()},
          {0, 1, 2}, [](Ops& o, std::vector<Tensor>& v) {
            o.token_shift_backward(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
          });
}

TEST_P(BackwardBackends, Wkv7Prepare) {
  for (int64_t N : {7, 64})
    for (bool residual : {true, false}) {
      const int64_t R = 41, C = 3 * N;
      const Shape rc{R, C};
      std::vector<Arg> args = {rnd(rc, 1), rnd(rc, 2), rnd(rc, 3), rnd(rc, 4), rnd(rc, 5), rnd(rc, 6, -3, 3),
                               rnd(rc, 7, -3, 3), residual ? rnd(rc, 8) : none(), residual ? rnd(rc, 9, -3, 3) : none(),
                               rnd({C}, 10, 0.2f, 1.5f), rnd({C}, 11, 0, 1.5f),
                               rnd(rc, 12), rnd(rc, 13), rnd(rc, 14), rnd(rc, 15), rnd(rc, 16), rnd(rc, 17),
                               rnd(rc, 18), residual ? rnd(rc, 19) : none(), residual ? rnd(rc, 20) : none(),
                               rnd({C}, 21), rnd({C}, 22)};
      check("wkv7_prepare N=" + std::to_string(N) + " residual " + std::to_string(residual), args,
            residual ? std::vector<int>{14, 15, 16, 17, 18, 19, 20, 21} : std::vector<int>{14, 15, 16, 17, 20, 21},
            [&](Ops& o, std::vector<Tensor>& v) {
              // w, a, b of the forward are not read: k stands in for them.
              Wkv7PrepareArgs f{v[0], v[0], v[0], v[0], v[1], v[5], v[6], v[7], v[8], v[9], v[10], int(N)};
              Wkv7PrepareGrads d{v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19], v[20], v[21]};
              o.wkv7_prepare_backward(f, d);
            });
    }
}

TEST_P(BackwardBackends, Wkv7Output) {
  for (int64_t N : {5, 64})
    for (int mode = 0; mode < 4; ++mode) {
      const bool norm = mode & 1, gate = mode & 2;
      const int64_t R = 41, H = 3, C = H * N;
      const Shape rc{R, C};
      std::vector<Arg> args = {rnd(rc, 1), rnd(rc, 2), rnd(rc, 3), rnd(rc, 4), rnd({H, N}, 5),
                               gate ? rnd(rc, 6) : none(), norm ? rnd({C}, 7) : none(), norm ? rnd({C}, 8) : none(),
                               rnd(rc, 9), rnd(rc, 10), rnd(rc, 11), rnd(rc, 12), rnd({H, N}, 13),
                               gate ? rnd(rc, 14) : none(), norm ? rnd({C}, 15) : none(), norm ? rnd({C}, 16) : none()};
      std::vector<int> outs = {8, 9, 10, 11, 12};
      if (gate) outs.push_back(13);
      if (norm) outs.insert(outs.end(), {14, 15});
      check("wkv7_output N=" + std::to_string(N) + " mode " + std::to_string(mode), args, outs,
            [](Ops& o, std::vector<Tensor>& v) {
              Wkv7OutputGrads d{v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
              o.wkv7_output_backward(d, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 64e-5f);
            });
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackwardBackends, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
