// The CUDA backend against the CPU backend: the student's time-mixing ops, attention with document
// masks and RoPE on random inputs with odd shapes, the teacher's and student's logits on the tiny
// fixtures, and one training step's loss and every gradient. The same tests run on the GPU ("cuda",
// skipped with the reason where there is no usable GPU) and, everywhere, with the same kernels under
// the CPU emulation of the CUDA execution model ("cuda_emulated"). The per-backend op suites in
// tests/ops (matmul, norms, losses, WKV-7 forward and backward, AdamW, ...) include both as well.
//
// Tolerances (fp32 storage and accumulation, sums over rows and vocabularies in double, like the
// CPU backend): 2e-5 relative for element-wise and per-row ops, 1e-4 for logits and gradients,
// which go through chains of GEMMs summed in another order (cuBLAS).
#include <gtest/gtest.h>

#include <functional>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher.h"
#include "model/test_objectives_util.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::max_rel_error;
using test::random_vector;

constexpr double kOpTol = 2e-5, kModelTol = 1e-4;

struct Case {
  std::string name;
  bool emulated;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// A tensor argument: random floats in [lo, hi), given ints, or absent (an empty tensor).
struct Arg {
  Shape shape;
  std::vector<float> f = {};
  std::vector<int32_t> i = {};
  bool absent = false;
};
Arg rnd(Shape s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) { return {s, random_vector(s.numel(), seed, lo, hi)}; }
Arg ints(Shape s, std::vector<int32_t> v) { return {s, {}, std::move(v)}; }
Arg none() { return {Shape{}, {}, {}, true}; }

class CudaBackend : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!GetParam().emulated) {
      std::string why;
      if (!cuda_available(&why)) GTEST_SKIP() << "no usable GPU for the cuda backend: " << why;
    }
    gpu = GetParam().emulated ? make_cuda_emulated_ops() : make_cuda_ops();
    cpu = make_cpu_ops();
  }

  // Runs op with the same inputs on the CPU backend and on this one; every argument's contents
  // afterwards (outputs and in-place updates alike) must agree within tol.
  void compare(const std::string& what, const std::vector<Arg>& args,
               const std::function<void(Ops&, std::vector<Tensor>&)>& op, double tol = kOpTol) {
    std::vector<std::vector<float>> out[2];
    Ops* both[2] = {cpu.get(), gpu.get()};
    for (int b = 0; b < 2; ++b) {
      std::vector<Buffer> held;
      std::vector<Tensor> views;
      for (const Arg& a : args) {
        if (a.absent) {
          views.push_back(Tensor{});
          continue;
        }
        const bool is_int = !a.i.empty();
        const DType dt = is_int ? DType::I32 : DType::F32;
        held.push_back(both[b]->alloc(static_cast<size_t>(a.shape.numel()) * 4));
        views.push_back(Tensor{held.back().data(), a.shape, dt, both[b]->device()});
        both[b]->upload(views.back(), is_int ? static_cast<const void*>(a.i.data()) : a.f.data());
      }
      op(*both[b], views);
      for (size_t q = 0; q < args.size(); ++q) {
        std::vector<float> v(args[q].absent ? 0 : static_cast<size_t>(args[q].shape.numel()));
        if (!args[q].i.empty()) {
          std::vector<int32_t> iv(v.size());
          both[b]->download(iv.data(), views[q]);
          for (size_t e = 0; e < v.size(); ++e) v[e] = static_cast<float>(iv[e]);
        } else if (!v.empty()) {
          both[b]->download(v.data(), views[q]);
        }
        out[b].push_back(std::move(v));
      }
    }
    for (size_t q = 0; q < args.size(); ++q) {
      if (out[0][q].empty()) continue;
      EXPECT_LT(max_rel_error(out[1][q], out[0][q]), tol) << what << ", argument " << q;
    }
  }

  std::unique_ptr<Ops> gpu, cpu;
};

TEST_P(CudaBackend, TokenShiftForwardAndBackward) {
  const int64_t P = 6, B = 3, T = 37, C = 130;
  std::vector<int32_t> reset(B * T, 0);
  reset[1 * T + 11] = reset[2 * T + 0] = reset[2 * T + 30] = 1;
  compare("token_shift", {rnd({P, B, T, C}, 1), rnd({B, T, C}, 2), rnd({B, C}, 3), rnd({P, C}, 4, 0, 1), ints({B, T}, reset)},
          [](Ops& o, std::vector<Tensor>& t) { o.token_shift(t[0], t[1], t[2], t[3], t[4]); });
  compare("token_shift_backward",
          {rnd({B, T, C}, 5), rnd({B, C}, 6), rnd({P, C}, 7), rnd({P, B, T, C}, 8), rnd({B, T, C}, 9), rnd({B, C}, 10),
           rnd({P, C}, 11, 0, 1), ints({B, T}, reset)},
          [](Ops& o, std::vector<Tensor>& t) { o.token_shift_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]); });
}

TEST_P(CudaBackend, ElementWise) {
  const Shape s{7, 301};
  compare("tanh", {rnd(s, 1), rnd(s, 2, -4, 4)}, [](Ops& o, std::vector<Tensor>& t) { o.tanh(t[0], t[1]); });
  compare("sigmoid", {rnd(s, 3), rnd(s, 4, -9, 9)}, [](Ops& o, std::vector<Tensor>& t) { o.sigmoid(t[0], t[1]); });
  for (Activation act : {Activation::Silu, Activation::GeluTanh}) {
    SCOPED_TRACE(static_cast<int>(act));
    compare("glu", {rnd(s, 5), rnd(s, 6, -5, 5), rnd(s, 7)},
            [act](Ops& o, std::vector<Tensor>& t) { o.glu(t[0], t[1], t[2], act); });
    compare("glu_backward", {rnd(s, 8), rnd(s, 9), rnd(s, 10), rnd(s, 11, -5, 5), rnd(s, 12)},
            [act](Ops& o, std::vector<Tensor>& t) { o.glu_backward(t[0], t[1], t[2], t[3], t[4], act); });
  }
  compare("tanh/sigmoid backward", {rnd(s, 13), rnd(s, 14), rnd(s, 15, 0, 1), rnd(s, 16)},
          [](Ops& o, std::vector<Tensor>& t) {
            o.tanh_backward(t[0], t[1], t[2]);
            o.sigmoid_backward(t[3], t[1], t[2]);
          });
  compare("scale, sum_squares", {rnd(s, 17), rnd({1}, 18)}, [](Ops& o, std::vector<Tensor>& t) {
    o.scale(t[0], -1.7f);
    o.sum_squares(t[1], t[0]);
  });
}

TEST_P(CudaBackend, Wkv7PrepareAndOutput) {
  for (int64_t N : {7, 64})
    for (bool residual : {false, true}) {
      const int64_t R = 41, C = 3 * N;
      const std::string tag = "N=" + std::to_string(N) + (residual ? " residual" : "");
      auto maybe = [&](Arg a) { return residual ? a : none(); };
      compare("wkv7_prepare " + tag,
              {rnd({R, C}, 1), rnd({R, C}, 2), rnd({R, C}, 3), rnd({R, C}, 4), rnd({R, C}, 5), rnd({R, C}, 6, -3, 3),
               rnd({R, C}, 7, -3, 3), maybe(rnd({R, C}, 8)), maybe(rnd({R, C}, 9, -3, 3)), rnd({C}, 10), rnd({C}, 11, 0, 1)},
              [N](Ops& o, std::vector<Tensor>& t) {
                o.wkv7_prepare(Wkv7PrepareArgs{.w = t[0], .a = t[1], .b = t[2], .k = t[3], .v = t[4], .w_logit = t[5],
                                               .a_logit = t[6], .v_first = t[7], .v_logit = t[8], .k_k = t[9],
                                               .k_a = t[10], .head_size = static_cast<int>(N)});
              });
      compare("wkv7_prepare_backward " + tag,
              {rnd({R, C}, 12), rnd({R, C}, 13), rnd({R, C}, 14, -3, 3), rnd({R, C}, 15, -3, 3), maybe(rnd({R, C}, 16)),
               maybe(rnd({R, C}, 17, -3, 3)), rnd({C}, 18), rnd({C}, 19, 0, 1), rnd({R, C}, 20), rnd({R, C}, 21),
               rnd({R, C}, 22), rnd({R, C}, 23), rnd({R, C}, 24), rnd({R, C}, 25), rnd({R, C}, 26), maybe(rnd({R, C}, 27)),
               maybe(rnd({R, C}, 28)), rnd({C}, 29), rnd({C}, 30)},
              [N](Ops& o, std::vector<Tensor>& t) {
                Tensor unused = t[0];
                const Wkv7PrepareArgs f{.w = unused, .a = unused, .b = unused, .k = t[0], .v = t[1], .w_logit = t[2],
                                        .a_logit = t[3], .v_first = t[4], .v_logit = t[5], .k_k = t[6], .k_a = t[7],
                                        .head_size = static_cast<int>(N)};
                o.wkv7_prepare_backward(f, Wkv7PrepareGrads{.dw = t[8], .da = t[9], .db = t[10], .dk = t[11], .dv = t[12],
                                                            .dw_logit = t[13], .da_logit = t[14], .dv_first = t[15],
                                                            .dv_logit = t[16], .dk_k = t[17], .dk_a = t[18]});
              });
    }
  for (int64_t N : {5, 64})
    for (int variant = 0; variant < 3; ++variant) {  // plain; group norm; group norm + gate
      const int64_t R = 41, H = 3, C = H * N;
      const bool norm = variant > 0, gate = variant == 2;
      auto when = [](bool on, Arg a) { return on ? a : none(); };
      const std::string tag = "N=" + std::to_string(N) + " variant " + std::to_string(variant);
      compare("wkv7_output " + tag,
              {rnd({R, C}, 1, -3, 3), rnd({R, C}, 2), rnd({R, C}, 3), rnd({R, C}, 4), rnd({H, N}, 5),
               when(gate, rnd({R, C}, 6, 0, 1)), when(norm, rnd({C}, 7)), when(norm, rnd({C}, 8))},
              [](Ops& o, std::vector<Tensor>& t) { o.wkv7_output(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], 64e-5f); });
      compare("wkv7_output_backward " + tag,
              {rnd({R, C}, 9), rnd({R, C}, 10), rnd({R, C}, 11), rnd({R, C}, 12), rnd({H, N}, 13), when(gate, rnd({R, C}, 14)),
               when(norm, rnd({C}, 15)), when(norm, rnd({C}, 16)), rnd({R, C}, 17, -3, 3), rnd({R, C}, 18), rnd({R, C}, 19),
               rnd({R, C}, 20), rnd({H, N}, 21), when(gate, rnd({R, C}, 22, 0, 1)), when(norm, rnd({C}, 23)),
               when(norm, rnd({C}, 24))},
              [](Ops& o, std::vector<Tensor>& t) {
                o.wkv7_output_backward(Wkv7OutputGrads{.dy = t[0], .dr = t[1], .dk = t[2], .dv = t[3], .dr_k = t[4],
                                                       .dg = t[5], .dln_w = t[6], .dln_b = t[7]},
                                       t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15], 64e-5f);
              });
    }
}

// GQA attention over a KV cache with packed documents (a per-query first key), T not a multiple of
// the 16-query tile, head sizes for both kernels (tiled up to 128, per query above).
TEST_P(CudaBackend, AttentionWithDocumentsAndRope) {
  for (int d : {36, 64, 128, 160}) {  // the 16-query tiled kernel up to 128, the per-query one above
    const int H = 6, Hkv = 2;
    const int64_t T = 37, offset = 150, S = offset + T;
    std::vector<int32_t> first(T), pos(T);
    for (int64_t t = 0; t < T; ++t) {
      first[t] = t < 9 ? 0 : t < 25 ? static_cast<int32_t>(offset + 9) : static_cast<int32_t>(offset + 25);
      pos[t] = static_cast<int32_t>(offset + t);
    }
    const AttentionArgs args{.n_heads = H, .n_kv_heads = Hkv, .head_dim = d, .q_offset = offset};
    compare("attention d=" + std::to_string(d),
            {rnd({T, H * d}, 1), rnd({T, H * d}, 2, -2, 2), rnd({S, Hkv * d}, 3, -2, 2), rnd({S, Hkv * d}, 4),
             ints({T}, first)},
            [&](Ops& o, std::vector<Tensor>& t) { o.attention(t[0], t[1], t[2], t[3], t[4], args); });
    compare("rope d=" + std::to_string(d), {rnd({T, H * d}, 5), ints({T}, pos)},
            [&](Ops& o, std::vector<Tensor>& t) { o.rope(t[0], t[1], H, d, 1e6f); });
  }
}

TEST_P(CudaBackend, RmsnormAndEmbedding) {
  const int64_t R = 19, C = 333, V = 50;
  std::vector<int32_t> ids(R);
  for (int64_t r = 0; r < R; ++r) ids[r] = static_cast<int32_t>((r * 7) % V);
  compare("rmsnorm", {rnd({R, C}, 1), rnd({R, C}, 2, -3, 3), rnd({C}, 3)},
          [](Ops& o, std::vector<Tensor>& t) { o.rmsnorm(t[0], t[1], t[2], 1e-6f); });
  compare("rmsnorm_backward", {rnd({R, C}, 4), rnd({C}, 5), rnd({R, C}, 6), rnd({R, C}, 7, -3, 3), rnd({C}, 8)},
          [](Ops& o, std::vector<Tensor>& t) { o.rmsnorm_backward(t[0], t[1], t[2], t[3], t[4], 1e-6f, true); });
  compare("embedding and its backward (repeated ids)", {rnd({R, C}, 9), rnd({V, C}, 10), ints({R}, ids), rnd({V, C}, 11)},
          [](Ops& o, std::vector<Tensor>& t) {
            o.embedding(t[0], t[1], t[2]);
            o.embedding_backward(t[3], t[0], t[2]);
          });
}

// Whole models on the tiny random fixtures: packed documents in the teacher (attention masks) and
// in two students (a pure RWKV-7 one with gate, a hybrid one keeping an attention layer).
TEST_P(CudaBackend, TeacherAndStudentLogits) {
  std::vector<int32_t> ids, docs;
  for (int i = 0; i < 45; ++i) {
    ids.push_back((i * 37 + 11) % 60);
    docs.push_back(i < 20 ? 0 : 1);
  }
  for (const char* name : {"qwen2_tiny", "llama_tiny", "qwen3_tiny", "llama3_tiny", "mistral_tiny", "gemma3_tiny"}) {
    auto ck = Checkpoint::open(test::data_path(std::string("teacher/") + name));
    const HostTensor want = Teacher(*ck, *cpu).forward(ids, docs), got = Teacher(*ck, *gpu).forward(ids, docs);
    EXPECT_LT(max_rel_error(got.values, want.values), kModelTol) << name;
  }
  for (const char* name : {"gate_llama", "hybrid_qwen2"}) {
    auto ck = StudentCheckpoint::open(test::data_path(std::string("student/") + name));
    const HostTensor want = Student(*ck, *cpu).forward(ids, docs), got = Student(*ck, *gpu).forward(ids, docs);
    EXPECT_LT(max_rel_error(got.values, want.values), kModelTol) << name;
  }
}

// One training step: the loss and every parameter's gradient of each objective, on an odd batch.
TEST_P(CudaBackend, TrainingStepLossAndGradients) {
  Batch batch;
  batch.B = 2, batch.T = 23;
  for (int64_t i = 0; i < batch.B * (batch.T + 1); ++i) {
    batch.tokens.push_back(static_cast<int32_t>((i * 29 + 5) % 48));
    batch.doc_ids.push_back(i < 17 ? 1 : 2);
    batch.mask.push_back(i % 5 != 3);
    batch.ref.push_back(-3.8f - 0.05f * static_cast<float>(i % 7));  // dpo: the rows as one pair
  }
  const std::pair<const char*, const char*> runs[] = {{"gate_tied", "align"}, {"gate_tied", "kd_full"},
                                                      {"gate_tied", "sft"},   {"gate_tied", "dpo"},
                                                      {"gn_untied", "kd_topk"}};
  for (const auto& [student, loss] : runs) {
    auto want = test::make_oracle_objective(student, loss, *cpu), got = test::make_oracle_objective(student, loss, *gpu);
    const double l_want = want->forward_backward(batch), l_got = got->forward_backward(batch);
    EXPECT_NEAR(l_got, l_want, 1e-5 * std::max(1.0, std::fabs(l_want))) << student << " " << loss;
    const auto g_want = test::gradients(*want), g_got = test::gradients(*got);
    ASSERT_EQ(g_want.size(), g_got.size());
    for (const auto& [name, g] : g_want)
      EXPECT_LT(max_rel_error(g_got.at(name), g), kModelTol) << student << " " << loss << " " << name;
  }
}

TEST_P(CudaBackend, BadInputsAreErrorsNotCrashes) {
  Buffer buf = gpu->alloc(64 * 4);
  Tensor table{buf.data(), Shape{4, 8}, DType::F32, gpu->device()}, y{static_cast<float*>(buf.data()) + 32, Shape{2, 8}, DType::F32, gpu->device()};
  Buffer ib = gpu->alloc(8);
  Tensor ids{ib.data(), Shape{2}, DType::I32, gpu->device()};
  const int32_t bad[2] = {1, 4};
  gpu->upload(ids, bad);
  EXPECT_THROW(gpu->embedding(y, table, ids), Error);
  Tensor host_y{nullptr, Shape{2, 8}, DType::F32, Device::CPU};
  EXPECT_THROW(gpu->embedding(host_y, table, ids), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, CudaBackend, ::testing::Values(Case{"cuda", false}, Case{"cuda_emulated", true}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace arwkv
