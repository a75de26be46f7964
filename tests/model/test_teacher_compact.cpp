// The teacher with its matrices kept as the GGUF file stores them (TeacherOptions::compact, the
// default) against the same teacher with fp32 copies: the tiny fixtures' Q8_0 files on every
// backend, and the real SmolLM2-135M-Instruct Q4_1 file on the CPU.
//
// Tolerances: the compact and fp32 weights hold the same values, so logits differ only by the
// order of fp32 sums: 1e-5 of the largest logit on the tiny models; 1e-4 on SmolLM2, whose 30
// layers and 49,152-way head compound the reordering.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher.h"
#include "backend_cases.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::max_rel_error;

using test::BackendCase;
using test::backends;

class TeacherCompact : public ::testing::TestWithParam<BackendCase> {};

TEST_P(TeacherCompact, TinyQ8_0LogitsEqualFp32Copies) {
  std::unique_ptr<Ops> ops = GetParam().make();
  const std::vector<int32_t> ids = {1, 17, 5, 60, 33, 2, 9, 41, 12, 7, 3};
  for (const char* model : {"llama_tiny", "qwen2_tiny", "qwen3_tiny", "llama3_tiny", "gemma3_tiny"}) {
    const auto ck = Checkpoint::open(test::data_path(std::string("teacher/") + model + "/model-q8_0.gguf"));
    const Teacher compact(*ck, *ops), f32(*ck, *ops, TeacherOptions{.compact = false});
    EXPECT_LT(compact.weight_bytes(), f32.weight_bytes() / 2) << model;
    EXPECT_LT(max_rel_error(compact.forward(ids).values, f32.forward(ids).values), 1e-5) << model;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, TeacherCompact, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param.name; });

TEST(TeacherCompactReal, SmolLM2Q4_1LogitsEqualFp32Copies) {
  const std::string path = test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  ARWKV_REQUIRE_FILE(path);
  std::unique_ptr<Ops> ops = make_cpu_ops();
  const auto ck = Checkpoint::open(path);
  const Teacher compact(*ck, *ops), f32(*ck, *ops, TeacherOptions{.compact = false});
  // Q4_1 is 20 bytes per 32 weights (5 bits each): the matrices shrink 6.4×, the norms stay fp32.
  EXPECT_LT(compact.weight_bytes() * 5, f32.weight_bytes());
  std::vector<int32_t> ids(48);
  std::iota(ids.begin(), ids.end(), 100);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((ids[i] * 7919) % 49152);
  const HostTensor a = compact.forward(ids), b = f32.forward(ids);
  EXPECT_LT(max_rel_error(a.values, b.values), 1e-4);
}

}  // namespace
}  // namespace arwkv
