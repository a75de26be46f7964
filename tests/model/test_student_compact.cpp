// The student with its frozen matrices held compact (StudentOptions, a stage's frozen_dtype)
// against the same student with fp32 copies of the same values: logits of inference, gradients of
// a kd and an align step, the checkpoint a stage writes, on every backend. "The same values": the
// fixture is first written as a bf16 checkpoint, so held bf16 and fp32 copies of it agree exactly
// and only the order of fp32 sums differs (1e-5 of the largest value; the reference backend sums
// in double both ways).
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "backend_cases.h"
#include "test_objectives_util.h"
#include "train/config.h"

namespace arwkv {
namespace {

namespace fs = std::filesystem;
using test::BackendCase;
using test::backends;
using test::max_rel_error;

// The gn_untied fixture rewritten with every compactable matrix stored bf16 (vectors and LoRA
// matrices f32), in a directory removed at the end.
class Bf16Fixture {
 public:
  Bf16Fixture() : dir_(fs::temp_directory_path() / ("arwkv_student_bf16_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    const auto ck = StudentCheckpoint::open(test::grad_dir("gn_untied"));
    write_student_checkpoint(
        dir_.string(), ck->config(), [&](const TensorSpec& s) { return ck->load(s.name); }, DType::F32,
        [](const TensorSpec& s) { return student_tensor_may_be_compact(s) ? DType::BF16 : DType::F32; });
    for (const char* f : {"tokenizer.json"})
      if (fs::exists(fs::path(test::grad_dir("gn_untied")) / f)) fs::copy(fs::path(test::grad_dir("gn_untied")) / f, dir_ / f);
  }
  ~Bf16Fixture() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
};

std::unique_ptr<Student> load(const std::string& path, Ops& ops, std::optional<DType> frozen,
                              const std::vector<std::string>& trains = {}) {
  const auto ck = StudentCheckpoint::open(path);
  StudentOptions opt;
  opt.frozen = frozen;
  if (!trains.empty())
    opt.trains = [cfg = ck->config(), trains](const std::string& n) { return student_tensor_trains(cfg, n, trains); };
  return std::make_unique<Student>(*ck, ops, opt);
}

class StudentCompact : public ::testing::TestWithParam<BackendCase> {};

TEST_P(StudentCompact, Bf16CheckpointRunsHeldBf16LikeItsFp32Copy) {
  std::unique_ptr<Ops> ops = GetParam().make();
  const Bf16Fixture fx;
  const auto held = load(fx.path(), *ops, std::nullopt), f32 = load(fx.path(), *ops, DType::F32);
  for (const TensorSpec& s : student_tensor_list(held->student_config())) {
    const DType dt = describe_student_weight(*held, s.name).value.dtype;
    EXPECT_EQ(dt, student_tensor_may_be_compact(s) ? DType::BF16 : DType::F32) << s.name;
    EXPECT_EQ(test::stored_layout(*held, s.name, describe_student_weight(*held, s.name).value),
              test::stored_layout(*f32, s.name, describe_student_weight(*f32, s.name).value))
        << s.name;
  }
  EXPECT_LT(held->weight_bytes(), f32->weight_bytes() * 3 / 4);
  const std::vector<int32_t> ids = {1, 17, 5, 40, 33, 2, 9, 41, 12, 7, 3, 22, 47};
  EXPECT_LT(max_rel_error(held->forward(ids).values, f32->forward(ids).values), 1e-5);
  // An fp32 checkpoint held bf16 rounds its matrices: the same as the bf16 checkpoint.
  const auto rounded = load(test::grad_dir("gn_untied"), *ops, DType::BF16);
  EXPECT_LT(max_rel_error(rounded->forward(ids).values, f32->forward(ids).values), 1e-5);
}

// kd training the time mixing and norms, and align, with the MLP, embedding and head frozen bf16:
// the same loss and gradients as with fp32 copies of the same values.
TEST_P(StudentCompact, FrozenBf16MatricesTrainLikeFp32Copies) {
  std::unique_ptr<Ops> ops = GetParam().make();
  const Bf16Fixture fx;
  const Batch batch = test::oracle_batch(test::oracle_json("gn_untied"));
  const std::vector<std::string> groups = {"time_mix", "norm"};
  const KdOptions kd{.temperature = 2.0f, .top_k = 0, .ce_weight = 0.1f};
  auto make_kd = [&](std::optional<DType> frozen) {
    return std::unique_ptr<StudentObjective>(new KdObjective(load(fx.path(), *ops, frozen, groups), test::load_grad_teacher(*ops), groups,
                                         kd, false));
  };
  auto make_align = [&](std::optional<DType> frozen) {
    return std::unique_ptr<StudentObjective>(new AlignObjective(load(fx.path(), *ops, frozen, {"time_mix"}), test::load_grad_teacher(*ops),
                                            false));
  };
  for (int kind = 0; kind < 2; ++kind) {
    std::unique_ptr<StudentObjective> held = kind ? make_kd(std::nullopt) : make_align(std::nullopt);
    std::unique_ptr<StudentObjective> f32 = kind ? make_kd(DType::F32) : make_align(DType::F32);
    EXPECT_EQ(held->student().layers()[0].w_up.dtype, DType::BF16);
    EXPECT_EQ(held->student().layers()[0].receptance.dtype, DType::F32);  // it trains
    const double a = held->forward_backward(batch), b = f32->forward_backward(batch);
    EXPECT_NEAR(a, b, 1e-5 * std::abs(b)) << (kind ? "kd" : "align");
    const auto ga = test::gradients(*held), gb = test::gradients(*f32);
    ASSERT_EQ(ga.size(), gb.size());
    for (const auto& [name, g] : gb) EXPECT_LT(max_rel_error(ga.at(name), g), 1e-5) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StudentCompact, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

// A stage's student keeps the frozen matrices bf16 on disk too, the trained ones f32, and reads back
// exactly.
TEST(StudentCompactSave, FrozenStayBf16TrainedAreF32) {
  std::unique_ptr<Ops> ops = make_cpu_ops();
  const std::vector<std::string> groups = {"time_mix"};
  KdObjective obj(load(test::grad_dir("gn_untied"), *ops, DType::BF16, groups), test::load_grad_teacher(*ops), groups,
                  KdOptions{}, false);
  const fs::path dir = fs::temp_directory_path() / ("arwkv_student_bf16_saved_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  obj.save_student(dir.string());
  const auto ck = StudentCheckpoint::open(dir.string());
  const auto back = std::make_unique<Student>(*ck, *ops);
  for (const TensorSpec& s : student_tensor_list(ck->config())) {
    const bool trains = student_tensor_trains(ck->config(), s.name, groups);
    EXPECT_EQ(ck->stored_dtype(s.name), student_tensor_may_be_compact(s) && !trains ? DType::BF16 : DType::F32) << s.name;
    EXPECT_EQ(test::stored_layout(obj.student(), s.name, describe_student_weight(obj.student(), s.name).value),
              test::stored_layout(*back, s.name, describe_student_weight(*back, s.name).value))
        << s.name;
  }
  fs::remove_all(dir);
}

TEST(StudentCompactConfig, FrozenDtypeIsCheckedByName) {
  const std::string head = "[run]\nout = \"o\"\ndata = \"d\"\n[[stage]]\nname = \"a\"\nkind = \"align\"\ntrain = [\"time_mix\"]\n"
                           "tokens = 10\nseq_len = 4\nbatch = 1\nlr = 1e-3\n";
  EXPECT_EQ(parse_train_config(head, "t.toml").stages[0].frozen_dtype, "stored");
  EXPECT_EQ(parse_train_config(head + "frozen_dtype = \"bf16\"\n", "t.toml").stages[0].frozen_dtype, "bf16");
  try {
    parse_train_config(head + "frozen_dtype = \"q4_k\"\n", "t.toml");
    FAIL() << "q4_k accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("frozen_dtype"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("t.toml"), std::string::npos) << e.what();
  }
  std::unique_ptr<Ops> ops = make_cpu_ops();
  EXPECT_THROW(load(test::grad_dir("gn_untied"), *ops, DType::Q8_0), Error);
}

}  // namespace
}  // namespace arwkv
