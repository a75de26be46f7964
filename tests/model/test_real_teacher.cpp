// The real teachers (SmolLM2-135M-Instruct Q4_1, the default; Gemma 3 270M Q4_K_M) against
// transformers loading the same file (tools/oracle/make_real_teacher_logits.py): same token ids
// from our tokenizer, same top-10 next tokens, and logits within a stated tolerance.
#include <nlohmann/json.hpp>

#include <fstream>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

using namespace arwkv;

namespace {

// Both sides dequantise the same blocks exactly; what differs is fp32 summation order over 30
// layers. Logits here are O(20); 2e-3 absolute is ~1e-4 of their range.
constexpr double kLogitTolerance = 2e-3;

struct RealModel {
  const char* gguf;
  const char* logits_json;
};

void PrintTo(const RealModel& m, std::ostream* os) { *os << m.gguf; }

struct RealTeacherBase {
  void load(const RealModel& m) {
    path = test::model_path(m.gguf);
    std::ifstream in(test::data_path(std::string("real/") + m.logits_json));
    ref = nlohmann::json::parse(in);
    ck = Checkpoint::open(path);
    ops = make_cpu_ops();
    teacher = std::make_unique<Teacher>(*ck, *ops);
    tok = load_tokenizer(*ck);
  }
  std::string path;
  nlohmann::json ref;
  std::unique_ptr<Checkpoint> ck;
  std::unique_ptr<Ops> ops;
  std::unique_ptr<Teacher> teacher;
  std::unique_ptr<Tokenizer> tok;
};

struct RealTeacher : ::testing::Test, RealTeacherBase {
  void SetUp() override {
    ARWKV_REQUIRE_FILE(test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf"));
    load({"SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_logits.json"});
  }
};

struct RealTeachers : ::testing::TestWithParam<RealModel>, RealTeacherBase {
  void SetUp() override {
    ARWKV_REQUIRE_FILE(test::model_path(GetParam().gguf));
    load(GetParam());
  }
};

}  // namespace

TEST_P(RealTeachers, NextTokenLogitsMatchTransformers) {
  for (const auto& c : ref["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode_start(c["prompt"].get<std::string>()), ids);
    HostTensor logits = teacher->forward(ids);
    const int64_t V = logits.shape[1];
    const float* last = logits.values.data() + (static_cast<int64_t>(ids.size()) - 1) * V;
    auto top_ids = c["top_ids"].get<std::vector<int32_t>>();
    auto top_logits = c["top_logits"].get<std::vector<double>>();
    double worst = 0.0;
    for (size_t i = 0; i < top_ids.size(); ++i) worst = std::max(worst, std::fabs(last[top_ids[i]] - top_logits[i]));
    EXPECT_LE(worst, kLogitTolerance);
    // Same argmax, and our own top-10 are the reference's top-10 (ties aside, same order).
    std::vector<int32_t> order(static_cast<size_t>(V));
    for (int32_t i = 0; i < V; ++i) order[static_cast<size_t>(i)] = i;
    std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                      [&](int32_t a, int32_t b) { return last[a] > last[b]; });
    EXPECT_EQ(order[0], top_ids[0]);
    for (size_t i = 0; i < top_ids.size(); ++i)
      EXPECT_NEAR(last[order[i]], top_logits[i], kLogitTolerance) << "rank " << i;
    double mean = 0.0;
    for (int64_t v = 0; v < V; ++v) mean += last[v];
    EXPECT_NEAR(mean / static_cast<double>(V), c["last_mean"].get<double>(), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, RealTeachers,
                         ::testing::Values(RealModel{"SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_logits.json"},
                                           RealModel{"gemma-3-270m.Q4_K_M.gguf", "gemma3_logits.json"}),
                         [](const auto& info) {
                           const std::string json = info.param.logits_json;
                           return json.substr(0, json.find('_'));
                         });

TEST_F(RealTeacher, IncrementalDecodeEqualsWholeSequence) {
  std::vector<int32_t> ids = tok->encode("The quick brown fox jumps over the lazy dog because");
  HostTensor whole = teacher->forward(ids);
  const int64_t V = whole.shape[1];
  auto state = teacher->new_state(64);
  // Prefill half, then one token at a time.
  const size_t half = ids.size() / 2;
  std::vector<float> logits = teacher->extend(*state, std::span(ids).first(half));
  for (size_t t = half; t <= ids.size(); ++t) {
    const float* ref_row = whole.values.data() + static_cast<int64_t>(t - 1) * V;
    EXPECT_LT(test::max_rel_error(logits.data(), ref_row, static_cast<size_t>(V)), 1e-4) << "token " << t;
    if (t < ids.size()) logits = teacher->extend(*state, std::span(ids).subspan(t, 1));
  }
}
