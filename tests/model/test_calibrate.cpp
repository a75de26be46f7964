// Output calibration (train/calibrate.h) on the tiny students of tests/data/student_grad: the
// per-layer errors it reports before and after equal the align loss measured on the same batch
// before and after the scales are applied, and no calibrated layer is farther from its teacher
// attention than the silent block.
#include <gtest/gtest.h>

#include <numeric>

#include "test_objectives_util.h"

namespace arwkv {
namespace {

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

class Calibration : public ::testing::TestWithParam<const char*> {};

TEST_P(Calibration, ReportedErrorsAreTheAlignLossAndNeverWorseThanSilence) {
  auto ops = make_cpu_ops();
  auto obj = test::make_oracle_objective(GetParam(), "align", *ops);
  auto* align = dynamic_cast<AlignObjective*>(obj.get());
  ASSERT_NE(align, nullptr);
  const Batch batch = test::oracle_batch(test::oracle_json(GetParam()));
  const double before = align->validate(batch).loss;
  align->accumulate_calibration(batch);
  const AlignObjective::Calibration c = align->apply_calibration();
  ASSERT_EQ(c.layers.size(), align->student().student_config().wkv_layers.size());
  EXPECT_NEAR(mean(c.before), before, 1e-4 * before);
  const double after = align->validate(batch).loss;
  EXPECT_NEAR(mean(c.after), after, 1e-3 * after + 1e-9);
  EXPECT_LT(after, before);
  for (size_t j = 0; j < c.layers.size(); ++j) {
    EXPECT_LE(c.after[j], c.silent[j] * (1 + 1e-9)) << "layer " << c.layers[j];
    EXPECT_LE(c.after[j], c.before[j] * (1 + 1e-9)) << "layer " << c.layers[j];
    EXPECT_EQ(c.scales[j].size(), static_cast<size_t>(align->student().student_config().n_wkv_heads()));
  }
  // Calibrating again finds scales of one: the projection already has the least-squares scale.
  align->accumulate_calibration(batch);
  for (const std::vector<double>& s : align->apply_calibration().scales)
    for (double a : s) EXPECT_NEAR(a, 1.0, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Students, Calibration, ::testing::Values("gate_tied", "gn_untied"));

}  // namespace
}  // namespace arwkv
