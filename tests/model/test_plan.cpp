// The memory plan against the buffers the program really makes, on the tiny fixtures: the
// activation arena of StudentBackprop for several batches, groups and modes, the student's and the
// teacher's weight buffers (fp32, bf16, Q8_0), and the plan's bookkeeping (phases, peak, errors).
#include <gtest/gtest.h>

#include "test_objectives_util.h"
#include "train/plan.h"

namespace arwkv {
namespace {

TEST(Plan, ArenaBytesEqualStudentBackprop) {
  std::unique_ptr<Ops> ops = make_cpu_ops();
  const test::GemmaStudent gemma;  // norms after the time mixing and the MLP
  for (const std::string name : {"gn_untied", "gate_tied", "gemma3"}) {
    auto student = name == "gemma3" ? std::make_unique<Student>(*StudentCheckpoint::open(gemma.dir), *ops)
                                    : test::load_grad_student(name, *ops);
    const StudentConfig& cfg = student->student_config();
    for (const std::vector<std::string>& groups :
         {std::vector<std::string>{"time_mix"}, {"mlp", "norm"}, {"head"}, test::kAllGroups})
      for (bool recompute : {false, true})
        for (bool align : {false, true}) {
          if (align && groups != std::vector<std::string>{"time_mix"}) continue;
          for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 7}, {3, 16}}) {
            StudentBackprop bp(*student, {.groups = groups, .recompute = recompute, .align = align});
            bp.begin(B, T, std::vector<int32_t>(static_cast<size_t>(B * T), 0));
            EXPECT_EQ(bp.arena_bytes(), student_arena_bytes(cfg, B, T, groups, recompute, align))
                << name << " " << groups.front() << " recompute " << recompute << " align " << align << " " << B
                << "x" << T;
          }
        }
  }
}

TEST(Plan, WeightBytesEqualTheModels) {
  std::unique_ptr<Ops> ops = make_cpu_ops();
  const auto ck = StudentCheckpoint::open(test::grad_dir("gn_untied"));
  PlanInput in;
  in.student = ck->config();
  in.kind = "sft";
  in.train = {"time_mix"};
  in.batch = 2, in.seq_len = 8;
  for (const char* frozen : {"f32", "bf16"}) {
    in.frozen_dtype = frozen;
    StudentOptions opt;
    opt.frozen = std::string(frozen) == "bf16" ? DType::BF16 : DType::F32;
    opt.trains = [&](const std::string& n) { return student_tensor_trains(in.student, n, in.train); };
    const Student s(*ck, *ops, opt);
    const MemoryPlan p = plan_stage(in);
    uint64_t weights = 0;
    for (const PlanItem& it : p.items)
      if (it.component == "student weights") weights = it.bytes;
    EXPECT_EQ(weights, s.weight_bytes()) << frozen;
  }
  for (const char* f : {"teacher/qwen2_tiny/model-q8_0.gguf", "teacher/llama_tiny/model-q8_0.gguf"}) {
    const auto tk = Checkpoint::open(test::data_path(f));
    const Teacher t(*tk, *ops);
    EXPECT_EQ(teacher_held_bytes(tk->config(), tk.get(), DType::F32), t.weight_bytes()) << f;
  }
}

// A kd stage of the Qwen2.5-0.5B shape (bf16 teacher), 4 x 512, time mixing, MLP and norms.
PlanInput qwen05_kd() {
  PlanInput in;
  in.teacher = known_shape("qwen2.5-0.5b");
  in.teacher_weight_bytes = teacher_held_bytes(*in.teacher, nullptr, DType::BF16);
  in.student = make_student_config(*in.teacher, 32, 32, 16, 64);
  in.batch = 4, in.seq_len = 512;
  in.kind = "kd";
  in.train = {"time_mix", "mlp", "norm"};
  return in;
}

TEST(Plan, PhasesPeakAndErrors) {
  PlanInput in = qwen05_kd();
  const MemoryPlan stored = plan_stage(in);
  ASSERT_EQ(stored.phases.size(), 4u);
  uint64_t largest = 0;
  for (const auto& [phase, b] : stored.phases) largest = std::max(largest, b);
  EXPECT_EQ(stored.peak, largest);
  EXPECT_EQ(stored.phases.at(stored.peak_phase), stored.peak);
  in.recompute = true;
  const MemoryPlan recompute = plan_stage(in);
  EXPECT_LT(recompute.phases.at("step"), stored.phases.at("step"));
  in.frozen_dtype = "bf16";
  EXPECT_LT(plan_stage(in).phases.at("step"), recompute.phases.at("step"));  // the embedding is frozen
  // 7B and 32B shapes: the embedding alone is 152,064 x 3,584 and x 5,120.
  EXPECT_EQ(known_shape("qwen2.5-7b").vocab_size * known_shape("qwen2.5-7b").hidden_size, int64_t{152064} * 3584);
  EXPECT_THROW(known_shape("gpt-5"), Error);
  in.kind = "bogus";
  EXPECT_THROW(plan_stage(in), Error);
  in.kind = "kd";
  in.frozen_dtype = "q4_k";
  EXPECT_THROW(plan_stage(in), Error);
  in.frozen_dtype = "stored";
  in.teacher.reset();
  EXPECT_THROW(plan_stage(in), Error);  // kd without a teacher
}

// One rank of a data-parallel run: its share of the rows (the activation arena of B/N rows, as
// StudentBackprop sizes it) and, with zero = 1, its share of the optimiser's moments (the longest
// range of shard_parts, ≤ a rank's ceiling share); zero = 0 keeps the whole optimiser.
TEST(Plan, RanksShareRowsAndTheOptimiser) {
  PlanInput in = qwen05_kd();
  auto component = [](const MemoryPlan& p, const std::string& name) {
    for (const PlanItem& it : p.items)
      if (it.component == name) return it.bytes;
    return uint64_t{0};
  };
  const MemoryPlan one = plan_stage(in);
  in.ranks = 2;
  const MemoryPlan two = plan_stage(in);
  const uint64_t adam1 = component(one, "AdamW moments"), adam2 = component(two, "AdamW moments");
  EXPECT_EQ(adam1, 8 * one.trained_parameters);
  EXPECT_EQ(adam2, 8 * ((one.trained_parameters + 1) / 2));
  EXPECT_EQ(component(two, "activations"), student_arena_bytes(in.student, 2, 512, in.train, false, false));
  EXPECT_EQ(component(two, "gradients"), component(one, "gradients"));  // ZeRO-1: whole gradients
  EXPECT_LT(two.peak, one.peak);
  in.zero = 0;
  EXPECT_EQ(component(plan_stage(in), "AdamW moments"), adam1);
  in.ranks = 3;  // 4 rows over 3 ranks: the busiest rank has 2
  EXPECT_EQ(component(plan_stage(in), "activations"), student_arena_bytes(in.student, 2, 512, in.train, false, false));
  in.ranks = 5;
  EXPECT_THROW(plan_stage(in), Error);
}

}  // namespace
}  // namespace arwkv
