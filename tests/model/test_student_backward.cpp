// The student's backward pass beyond the oracle batch: directional finite differences per
// parameter group on the reference backend, the CPU backend against the reference, recompute mode
// against stored activations, the training forward against the inference forward, a few AdamW
// steps lowering the align and kd losses, the parameter list (groups, tied head), hybrid layers
// refused where a gradient would have to cross them, and the saved checkpoint read back.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <unistd.h>

#include "test_objectives_util.h"

namespace arwkv {
namespace {

// B rows of T + 1 random tokens with documents of random lengths (ids carried across rows, as the
// packed reader does) and a mask that is 1 for ~80% of tokens.
Batch random_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b;
  b.B = B, b.T = T;
  int64_t doc = 100;
  for (int64_t i = 0; i < B * (T + 1); ++i) {
    if (rng() % 9 == 0) ++doc;
    b.tokens.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(V)));
    b.doc_ids.push_back(doc);
    b.mask.push_back(rng() % 5 != 0);
  }
  return b;
}

void add_direction(Ops& ops, const Parameter& p, const std::vector<float>& d, float h) {
  std::vector<float> v(static_cast<size_t>(p.value.numel()));
  ops.download(v.data(), p.value);
  for (size_t i = 0; i < v.size(); ++i) v[i] += h * d[i];
  ops.upload(p.value, v.data());
}

// (L(θ + h·d) − L(θ − h·d)) / 2h against ⟨∇L, d⟩ for random unit directions d over each group.
void check_directional_of(Ops* ops, StudentObjective* obj, const Batch& batch, const std::vector<std::string>& groups,
                          const std::string& student, const std::string& loss) {
  obj->forward_backward(batch);
  const std::vector<Parameter> params = obj->parameters();
  for (const std::string& group : groups)
    for (uint64_t trial = 0; trial < 2; ++trial) {
      std::mt19937_64 rng(trial * 977 + group.size());
      std::normal_distribution<float> normal;
      std::vector<std::vector<float>> dirs;
      double norm2 = 0.0, analytic = 0.0;
      for (const Parameter& p : params) {
        dirs.emplace_back(p.group == group ? static_cast<size_t>(p.value.numel()) : 0);
        for (float& x : dirs.back()) {
          x = normal(rng);
          norm2 += double{x} * x;
        }
      }
      for (size_t i = 0; i < params.size(); ++i) {
        if (dirs[i].empty()) continue;
        for (float& x : dirs[i]) x = static_cast<float>(x / std::sqrt(norm2));
        std::vector<float> g(dirs[i].size());
        ops->download(g.data(), params[i].grad);
        for (size_t j = 0; j < g.size(); ++j) analytic += double{g[j]} * dirs[i][j];
      }
      ASSERT_GT(norm2, 0.0) << "group " << group << " has no parameter";
      const float h = 1e-2f;
      auto shift = [&](float s) {
        for (size_t i = 0; i < params.size(); ++i)
          if (!dirs[i].empty()) add_direction(*ops, params[i], dirs[i], s);
      };
      shift(h);
      const double up = obj->validate(batch).loss;
      shift(-2 * h);
      const double down = obj->validate(batch).loss;
      shift(h);
      const double numeric = (up - down) / (2.0 * h);
      if (std::getenv("ARWKV_TEST_VERBOSE"))
        std::printf("%s %s %s: numeric %.7f analytic %.7f\n", student.c_str(), loss.c_str(), group.c_str(), numeric, analytic);
      // fp32 forwards: two losses differ by their ~1e-7 relative rounding, divided by 2h; the
      // O(h²) truncation stays below 1e-4 here. Directional derivatives are 1e-3 .. 0.4.
      EXPECT_NEAR(numeric, analytic, 2e-4 + 2e-3 * std::abs(analytic))
          << student << " " << loss << " group " << group << " trial " << trial;
    }
}

void check_directional(const std::string& student, const std::string& loss, const std::vector<std::string>& groups) {
  auto ops = make_reference_ops();
  auto obj = test::make_oracle_objective(student, loss, *ops);
  check_directional_of(ops.get(), obj.get(), test::oracle_batch(test::oracle_json(student)), groups, student, loss);
}

// A pure time-mix student of the tiny Gemma 3 teacher: its norms after the time mixing and the
// MLP, GeGLU and scaled embedding all take part in the backward.
using GemmaStudent = test::GemmaStudent;

TEST(StudentBackward, DirectionalDerivativesOfAGemmaStudent) {
  auto ops = make_reference_ops();
  const GemmaStudent made;
  const std::string& dir = made.dir;
  auto teacher = [&] { return std::make_unique<Teacher>(*Checkpoint::open(test::data_path("teacher/gemma3_tiny")), *ops); };
  auto student = [&] { return std::make_unique<Student>(*StudentCheckpoint::open(dir), *ops); };
  const Batch batch = random_batch(2, 9, 300, 17);
  const std::vector<std::string> groups = {"time_mix", "mlp", "norm", "head"};  // tied: the embedding is the head
  KdObjective kd(student(), teacher(), groups, KdOptions{.temperature = 1.0f, .top_k = 0, .ce_weight = 0.3f}, false);
  check_directional_of(ops.get(), &kd, batch, groups, "gemma3", "kd_full");
  AlignObjective align(student(), teacher(), false);
  check_directional_of(ops.get(), &align, batch, {"time_mix"}, "gemma3", "align");
}

TEST(StudentBackward, DirectionalDerivativesOfBlocks) {
  check_directional("gate_tied", "align", {"time_mix"});
  check_directional("gn_untied", "align", {"time_mix"});
}

TEST(StudentBackward, DirectionalDerivativesOfTwoLayerModel) {
  check_directional("gate_tied", "kd_full", {"time_mix", "mlp", "norm", "head"});  // tied: one "head" tensor
  check_directional("gn_untied", "kd_topk", test::kAllGroups);
  check_directional("gn_untied", "sft", {"time_mix", "mlp", "norm"});
  check_directional("gate_tied", "dpo", {"time_mix", "mlp", "norm", "head"});
}

void expect_same_gradients(StudentObjective& a, StudentObjective& b, double tol) {
  const auto ga = test::gradients(a), gb = test::gradients(b);
  ASSERT_EQ(ga.size(), gb.size());
  for (const auto& [name, g] : gb) EXPECT_LE(test::max_rel_error(ga.at(name), g), tol) << name;
}

TEST(StudentBackward, CpuMatchesReferenceOnOddBatch) {
  const Batch batch = random_batch(3, 37, 48, 11);
  auto ref = make_reference_ops(), cpu = make_cpu_ops();
  for (const char* loss : {"align", "kd_full", "sft"}) {
    auto a = test::make_oracle_objective("gate_tied", loss, *ref), b = test::make_oracle_objective("gate_tied", loss, *cpu);
    EXPECT_NEAR(a->forward_backward(batch), b->forward_backward(batch), 1e-5) << loss;
    expect_same_gradients(*b, *a, 1e-4);
  }
  auto a = test::make_oracle_objective("gn_untied", "kd_topk", *ref), b = test::make_oracle_objective("gn_untied", "kd_topk", *cpu);
  EXPECT_NEAR(a->forward_backward(batch), b->forward_backward(batch), 1e-5);
  expect_same_gradients(*b, *a, 1e-4);
}

TEST(StudentBackward, RecomputeEqualsStored) {
  const Batch batch = random_batch(2, 29, 48, 5);
  auto ops = make_cpu_ops();
  for (const char* loss : {"align", "kd_full"}) {
    auto stored = test::make_oracle_objective("gate_tied", loss, *ops, false);
    auto recomputed = test::make_oracle_objective("gate_tied", loss, *ops, true);
    EXPECT_EQ(stored->forward_backward(batch), recomputed->forward_backward(batch)) << loss;
    expect_same_gradients(*recomputed, *stored, 1e-6);
  }
}

// Every counted target's cross-entropy from Student::forward (the inference form, per row with
// document ids) against the sft objective's loss, also on a student with a kept attention layer.
TEST(StudentBackward, TrainingForwardEqualsInferenceForward) {
  auto ops = make_cpu_ops();
  const GemmaStudent gemma;
  for (const std::string& dir : {test::grad_dir("gate_tied"), test::data_path("student/hybrid_qwen2"), gemma.dir}) {
    auto student = std::make_unique<Student>(*StudentCheckpoint::open(dir), *ops);
    const int64_t V = student->config().vocab_size;
    const Batch batch = random_batch(2, 23, V, 3);
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t b = 0; b < batch.B; ++b) {
      std::vector<int32_t> ids, docs;
      for (int64_t t = 0; t < batch.T; ++t) {
        ids.push_back(batch.input(b, t));
        docs.push_back(static_cast<int32_t>(batch.doc_ids[batch.at(b, t)]));
      }
      const HostTensor logits = student->forward(ids, docs);
      for (int64_t t = 0; t < batch.T; ++t) {
        if (!batch.target_valid(b, t)) continue;
        const float* z = logits.values.data() + t * V;
        double m = *std::max_element(z, z + V), s = 0.0;
        for (int64_t v = 0; v < V; ++v) s += std::exp(z[v] - m);
        sum += m + std::log(s) - z[batch.target(b, t)];
        ++n;
      }
    }
    SftObjective sft(std::move(student), {"head"}, false);
    EXPECT_NEAR(sft.validate(batch).loss, sum / static_cast<double>(n), 1e-5 * sum / static_cast<double>(n)) << dir;
  }
}

// AdamW by hand (Ops::adamw_step) over a fixed batch: the loss falls.
double train_steps(StudentObjective& obj, const Batch& batch, int steps, float lr) {
  Ops& ops = obj.student().ops();
  std::vector<HostTensor> m, v;
  for (const Parameter& p : obj.parameters()) m.emplace_back(p.value.shape), v.emplace_back(p.value.shape);
  for (int step = 1; step <= steps; ++step) {
    obj.zero_grad();
    obj.forward_backward(batch);
    const std::vector<Parameter> params = obj.parameters();
    for (size_t i = 0; i < params.size(); ++i)
      ops.adamw_step(params[i].value, params[i].grad, m[i].view(), v[i].view(), lr, 0.9f, 0.95f, 1e-8f,
                     params[i].decay ? 0.01f : 0.0f, step);
  }
  return obj.validate(batch).loss;
}

TEST(StudentBackward, AdamWStepsLowerAlignAndKdLoss) {
  auto ops = make_cpu_ops();
  const Batch batch = test::oracle_batch(test::oracle_json("gate_tied"));
  auto align = test::make_oracle_objective("gate_tied", "align", *ops);
  const double align_before = align->validate(batch).loss;
  const double align_after = train_steps(*align, batch, 10, 3e-3f);
  EXPECT_LT(align_after, 0.8 * align_before);
  auto kd = test::make_oracle_objective("gn_untied", "kd_topk", *ops);
  const ValidationResult kd_before = kd->validate(batch);
  const double kd_after = train_steps(*kd, batch, 10, 3e-3f);
  EXPECT_LT(kd_after, 0.8 * kd_before.loss);
  ASSERT_TRUE(kd_before.kl && kd_before.top1);
  EXPECT_GT(*kd_before.kl, 0.0);
  EXPECT_LT(*kd->validate(batch).kl, *kd_before.kl);
}

TEST(StudentBackward, ParameterGroupsAndTiedHead) {
  auto ops = make_cpu_ops();
  auto tied = test::load_grad_student("gate_tied", *ops);
  auto groups_of = [](const StudentBackprop& bp) {
    std::map<std::string, std::string> g;
    for (const Parameter& p : bp.parameters()) g[p.name] = p.group;
    return g;
  };
  auto head = groups_of(StudentBackprop(*tied, {.groups = {"head"}}));
  ASSERT_EQ(head.size(), 1u);
  EXPECT_EQ(head.at("model.embed_tokens.weight"), "head");
  EXPECT_EQ(groups_of(StudentBackprop(*tied, {.groups = {"embedding"}})).at("model.embed_tokens.weight"), "embedding");
  auto untied = test::load_grad_student("gn_untied", *ops);
  auto all = groups_of(StudentBackprop(*untied, {.groups = test::kAllGroups}));
  EXPECT_EQ(all.size(), student_tensor_list(untied->student_config()).size());
  EXPECT_EQ(all.at("lm_head.weight"), "head");
  EXPECT_EQ(all.at("model.embed_tokens.weight"), "embedding");
  EXPECT_EQ(all.at("model.layers.1.self_attn.time_mixer.x_k"), "time_mix");
  EXPECT_EQ(all.at("model.layers.0.post_attention_layernorm.weight"), "norm");
  EXPECT_THROW(StudentBackprop(*untied, {.groups = {"bogus"}}), Error);
}

// hybrid_qwen2: layers 0 and 2 time mixing, layer 1 the teacher's attention (no backward yet).
TEST(StudentBackward, HybridLayersRefusedWhereGradientsWouldCrossThem) {
  auto ops = make_cpu_ops();
  auto s = std::make_unique<Student>(*StudentCheckpoint::open(test::data_path("student/hybrid_qwen2")), *ops);
  EXPECT_THROW(StudentBackprop(*s, {.groups = {"time_mix"}}), Error);
  EXPECT_THROW(StudentBackprop(*s, {.groups = {"mlp"}}), Error);
  EXPECT_THROW(StudentBackprop(*s, {.groups = {"embedding"}}), Error);
  EXPECT_THROW(StudentBackprop(*s, {.groups = {"attention"}}), Error);
  EXPECT_NO_THROW(StudentBackprop(*s, {.groups = {"head"}}));
  EXPECT_NO_THROW(StudentBackprop(*s, {.groups = {"time_mix"}, .align = true}));
}

TEST(StudentBackward, SavedStudentReadsBackExactly) {
  auto ops = make_cpu_ops();
  auto obj = test::make_oracle_objective("gn_untied", "kd_topk", *ops);
  const Batch batch = test::oracle_batch(test::oracle_json("gn_untied"));
  train_steps(*obj, batch, 1, 1e-2f);  // weights no longer the fixture's
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("arwkv_saved_student_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  obj->save_student(dir.string());
  auto back = std::make_unique<Student>(*StudentCheckpoint::open(dir.string()), *ops);
  for (const TensorSpec& spec : student_tensor_list(back->student_config())) {
    const Tensor a = describe_student_weight(obj->student(), spec.name).value;
    EXPECT_EQ(test::stored_layout(obj->student(), spec.name, a),
              test::stored_layout(*back, spec.name, describe_student_weight(*back, spec.name).value))
        << spec.name;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace arwkv
