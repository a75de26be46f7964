// The student against the independent float64 oracle (tools/oracle/make_student_fixtures.py), and
// its forms against each other: whole sequence = prefill then token-by-token decode = pieces with a
// carried state; packed documents = separate runs; CPU backend = reference backend.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/student/student_parts.h"
#include "test_util.h"

namespace arwkv {
namespace {

std::vector<float> read_f32(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  EXPECT_EQ(static_cast<size_t>(in.gcount()), n * sizeof(float)) << path;
  return v;
}

std::vector<float> rows(const HostTensor& t, int64_t begin, int64_t end) {
  const int64_t c = t.shape[1];
  return {t.values.begin() + begin * c, t.values.begin() + end * c};
}

// Every tensor of a state, by name, copied to the host.
std::map<std::string, std::vector<float>> state_values(ModelState& s, Ops& ops) {
  std::map<std::string, std::vector<float>> out;
  for (const StateTensor& t : s.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.tensor.numel()));
    ops.download(v.data(), t.tensor);
    out[t.name] = std::move(v);
  }
  return out;
}

void expect_states_close(ModelState& a, ModelState& b, Ops& ops, double tol) {
  auto va = state_values(a, ops), vb = state_values(b, ops);
  ASSERT_EQ(va.size(), vb.size());
  for (const auto& [name, v] : vb) EXPECT_LT(test::max_rel_error(va.at(name), v), tol) << name;
}

struct Case {
  const char* model;
  bool reference;
};

class StudentOracle : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = test::data_path(std::string("student/") + GetParam().model);
    ckpt_ = StudentCheckpoint::open(dir_);
    ops_ = GetParam().reference ? make_reference_ops() : make_cpu_ops();
    model_ = std::make_unique<Student>(*ckpt_, *ops_);
    std::ifstream in(dir_ + "/oracle.json");
    oracle_ = nlohmann::json::parse(in);
  }
  std::vector<int32_t> sequence(int s) const { return oracle_["sequences"][s].get<std::vector<int32_t>>(); }
  std::vector<float> dump(const std::string& name, size_t n) const { return read_f32(dir_ + "/" + name, n); }

  std::string dir_;
  std::unique_ptr<StudentCheckpoint> ckpt_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Student> model_;
  nlohmann::json oracle_;
};

TEST_P(StudentOracle, LogitsMixOutputsAndFinalStateMatchOracle) {
  const std::vector<int32_t> ids = sequence(0);
  const int64_t T = static_cast<int64_t>(ids.size()), V = model_->config().vocab_size;
  const int64_t C = model_->config().hidden_size, H = model_->student_config().n_wkv_heads();
  const int64_t N = model_->student_config().head_size;
  StudentCapture cap;
  auto state = model_->new_state(T);
  const HostTensor logits = model_->forward(ids, {}, state.get(), &cap);
  EXPECT_LT(test::max_rel_error(logits.values, dump("logits_0.f32", static_cast<size_t>(T * V))), 1e-4);
  for (size_t l = 0; l < cap.mix_output.size(); ++l)
    EXPECT_LT(test::max_rel_error(cap.mix_output[l].values, dump(fmt::format("mix_out_{}.f32", l), T * C)), 1e-4)
        << "layer " << l;
  auto values = state_values(*state, *ops_);
  for (int l : model_->student_config().wkv_layers) {
    EXPECT_LT(test::max_rel_error(values.at(fmt::format("layers.{}.wkv_state", l)),
                                  dump(fmt::format("state_S_{}.f32", l), static_cast<size_t>(H * N * N))), 1e-4);
    EXPECT_LT(test::max_rel_error(values.at(fmt::format("layers.{}.x_prev", l)),
                                  dump(fmt::format("state_xprev_{}.f32", l), static_cast<size_t>(C))), 1e-5);
  }
  EXPECT_EQ(state->n_tokens(), T);
  EXPECT_LT(test::max_rel_error(model_->logits(ids).values, logits.values), 1e-6);
}

TEST_P(StudentOracle, PackedDocumentsEqualSeparateRuns) {
  const std::vector<int32_t> ids = sequence(1), doc_ids = oracle_["doc_ids_1"].get<std::vector<int32_t>>();
  const int64_t T = static_cast<int64_t>(ids.size()), V = model_->config().vocab_size;
  const std::vector<float> want = dump("logits_1.f32", static_cast<size_t>(T * V));
  EXPECT_LT(test::max_rel_error(model_->forward(ids, doc_ids).values, want), 1e-4);
  // The same through a state that already holds the first document: only the reset separates them.
  size_t first = 0;
  while (doc_ids[first] == doc_ids[0]) ++first;
  auto state = model_->new_state(2 * T);
  model_->forward(std::span(ids).first(first), {}, state.get());
  std::vector<int32_t> ids2(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
  auto alone = model_->new_state(T);
  const HostTensor second_alone = model_->forward(ids2, {}, alone.get());
  std::vector<int32_t> carried(ids.begin() + static_cast<std::ptrdiff_t>(first) - 1, ids.end());
  std::vector<int32_t> carried_docs(carried.size(), 1);
  carried_docs[0] = 0;
  // The last token of document 0 again, then document 1: its logits must not see document 0.
  const HostTensor both = model_->forward(carried, carried_docs, state.get());
  EXPECT_LT(test::max_rel_error(rows(both, 1, both.shape[0]), second_alone.values), 1e-5);
  if (model_->student_config().pure_rwkv()) expect_states_close(*state, *alone, *ops_, 1e-5);
}

TEST_P(StudentOracle, PrefillThenDecodeEqualsWholeSequence) {
  const std::vector<int32_t> ids = sequence(0);
  const int64_t T = static_cast<int64_t>(ids.size()), V = model_->config().vocab_size;
  auto whole_state = model_->new_state(T);
  const HostTensor whole = model_->forward(ids, {}, whole_state.get());
  auto state = model_->new_state(T);
  const int64_t prefill = 5;
  std::vector<float> last = model_->extend(*state, std::span(ids).first(prefill));
  EXPECT_LT(test::max_rel_error(last, rows(whole, prefill - 1, prefill)), 1e-5);
  for (int64_t t = prefill; t < T; ++t) {
    last = model_->extend(*state, std::span(ids).subspan(static_cast<size_t>(t), 1));
    EXPECT_LT(test::max_rel_error(last, rows(whole, t, t + 1)), 1e-5) << "token " << t;
  }
  EXPECT_EQ(static_cast<int64_t>(last.size()), V);
  expect_states_close(*state, *whole_state, *ops_, 1e-5);
}

TEST_P(StudentOracle, PiecesWithCarriedStateEqualOnePass) {
  const std::vector<int32_t> ids = sequence(0);
  const int64_t T = static_cast<int64_t>(ids.size());
  auto whole_state = model_->new_state(T);
  const HostTensor whole = model_->forward(ids, {}, whole_state.get());
  auto state = model_->new_state(T);
  const size_t cuts[] = {0, 7, 8, 13, ids.size()};
  for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
    const HostTensor part = model_->forward(std::span(ids).subspan(cuts[i], cuts[i + 1] - cuts[i]), {}, state.get());
    EXPECT_LT(test::max_rel_error(part.values, rows(whole, static_cast<int64_t>(cuts[i]), static_cast<int64_t>(cuts[i + 1]))),
              1e-5)
        << "piece " << i;
  }
  expect_states_close(*state, *whole_state, *ops_, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Models, StudentOracle,
                         ::testing::Values(Case{"gate_llama", true}, Case{"gate_llama", false},
                                           Case{"hybrid_qwen2", true}, Case{"hybrid_qwen2", false}),
                         [](const auto& info) {
                           return std::string(info.param.model) + (info.param.reference ? "_reference" : "_cpu");
                         });

TEST(StudentBackends, CpuEqualsReference) {
  for (const char* name : {"gate_llama", "hybrid_qwen2"}) {
    auto ckpt = StudentCheckpoint::open(test::data_path(std::string("student/") + name));
    auto ref_ops = make_reference_ops(), cpu_ops = make_cpu_ops();
    Student ref(*ckpt, *ref_ops), cpu(*ckpt, *cpu_ops);
    std::vector<int32_t> ids;
    std::mt19937 rng(7);
    for (int i = 0; i < 37; ++i) ids.push_back(static_cast<int32_t>(rng() % ckpt->config().base.vocab_size));
    std::vector<int32_t> docs(ids.size(), 0);
    for (size_t i = 20; i < docs.size(); ++i) docs[i] = 1;
    EXPECT_LT(test::max_rel_error(cpu.forward(ids, docs).values, ref.forward(ids, docs).values), 1e-5) << name;
  }
}

}  // namespace
}  // namespace arwkv
