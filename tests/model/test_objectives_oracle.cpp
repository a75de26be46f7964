// The objectives' losses and every parameter gradient against the float64 autograd oracle
// (tools/oracle/make_student_grad_fixtures.py) on a packed batch with a document boundary and an
// assistant mask: align, kd over the full vocabulary (τ = 2, α = 0.5), kd over the teacher's top 5
// (τ = 1.5, α = 0.3), sft, and dpo (β = 0.5, the two rows as the chosen and the rejected reply), on a
// student with gate and tied head and one with group norm and an untied head, on the reference and
// the CPU backends.
#include <gtest/gtest.h>

#include <fstream>

#include "test_objectives_util.h"

namespace arwkv {
namespace {

struct Case {
  const char* student;
  const char* loss;
  bool reference;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.student) + "_" + info.param.loss + (info.param.reference ? "_reference" : "_cpu");
}

class ObjectiveOracle : public ::testing::TestWithParam<Case> {};

TEST_P(ObjectiveOracle, LossAndEveryGradientMatch) {
  const Case c = GetParam();
  const nlohmann::json o = test::oracle_json(c.student);
  const nlohmann::json& want = o["losses"][c.loss];
  std::unique_ptr<Ops> ops = c.reference ? make_reference_ops() : make_cpu_ops();
  auto obj = test::make_oracle_objective(c.student, c.loss, *ops);
  const Batch batch = test::oracle_batch(o);

  const double loss = obj->forward_backward(batch);
  EXPECT_NEAR(loss, want["loss"].get<double>(), 2e-5 * std::abs(want["loss"].get<double>()));

  std::ifstream in(test::grad_dir(c.student) + "/grads_" + c.loss + ".f32", std::ios::binary);
  ASSERT_TRUE(in);
  const auto got = test::gradients(*obj);
  EXPECT_EQ(got.size(), want["tensors"].size()) << "every trainable tensor has an oracle gradient";
  double worst = 0.0;
  for (const auto& t : want["tensors"]) {
    const std::string name = t[0].get<std::string>();
    size_t n = 1;
    for (const auto& d : t[1]) n *= d.get<size_t>();
    std::vector<float> ref(n);
    in.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(n * sizeof(float)));
    ASSERT_TRUE(got.count(name)) << name << " is not a parameter";
    ASSERT_EQ(got.at(name).size(), n) << name;
    const double err = test::max_rel_error(got.at(name), ref);
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-4) << name;
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Objectives, ObjectiveOracle,
                         ::testing::Values(Case{"gate_tied", "align", true}, Case{"gate_tied", "align", false},
                                           Case{"gate_tied", "kd_full", true}, Case{"gate_tied", "kd_full", false},
                                           Case{"gate_tied", "sft", true}, Case{"gate_tied", "sft", false},
                                           Case{"gate_tied", "dpo", true}, Case{"gate_tied", "dpo", false},
                                           Case{"gn_untied", "align", true}, Case{"gn_untied", "align", false},
                                           Case{"gn_untied", "kd_topk", true}, Case{"gn_untied", "kd_topk", false}),
                         case_name);

// A second forward_backward on the same batch doubles every gradient (they accumulate) and
// returns the same loss; zero_grad clears them.
TEST(Objectives, GradientsAccumulateAndZero) {
  auto ops = make_cpu_ops();
  auto obj = test::make_oracle_objective("gate_tied", "kd_full", *ops);
  const Batch batch = test::oracle_batch(test::oracle_json("gate_tied"));
  const double l1 = obj->forward_backward(batch);
  const auto g1 = test::gradients(*obj);
  EXPECT_EQ(obj->forward_backward(batch), l1);
  for (const auto& [name, g] : test::gradients(*obj)) {
    std::vector<float> twice(g1.at(name));
    for (float& x : twice) x *= 2.0f;
    EXPECT_LT(test::max_rel_error(g, twice), 1e-6) << name;
  }
  obj->zero_grad();
  for (const auto& [name, g] : test::gradients(*obj))
    for (float x : g) ASSERT_EQ(x, 0.0f) << name;
}

}  // namespace
}  // namespace arwkv
