// The teacher on small in-memory random models: the CPU backend against the scalar reference on a
// whole model, KV-cache decoding against the whole-sequence pass, packed documents against separate
// runs, and the errors a bad checkpoint or a full context must raise.
#include <gtest/gtest.h>

#include <map>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher.h"
#include "model/teacher/teacher_tensors.h"
#include "test_util.h"

namespace arwkv {
namespace {

using test::max_rel_error;

// A checkpoint held in memory: every tensor of the architecture's list, seeded random.
class MemoryCheckpoint final : public Checkpoint {
 public:
  MemoryCheckpoint(ModelConfig cfg, uint64_t seed, bool with_head) : cfg_(std::move(cfg)) {
    for (const TensorSpec& s : teacher_tensors(cfg_)) {
      if (s.name == "lm_head.weight" && !with_head) continue;
      HostTensor t(s.shape);
      const bool norm = s.name.find("norm") != std::string::npos;
      const float scale = s.shape.ndim == 2 ? 1.5f / std::sqrt(static_cast<float>(s.shape[1])) : 0.2f;
      t.values = test::random_vector(static_cast<size_t>(s.shape.numel()), ++seed, -scale, scale);
      if (norm)
        for (float& v : t.values) v += 1.0f;
      tensors_[s.name] = std::move(t);
      infos_.push_back({s.name, s.shape, "F32"});
    }
  }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const ModelConfig& config() const override { return cfg_; }
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  bool has(const std::string& name) const override { return tensors_.count(name) > 0; }
  HostTensor load(const std::string& name) const override { return tensors_.at(name); }

  std::map<std::string, HostTensor> tensors_;

 private:
  std::string path_ = "<memory>";
  ModelConfig cfg_;
  std::vector<TensorInfo> infos_;
};

ModelConfig small_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.arch_name = arch == Arch::Qwen2 ? "qwen2" : "llama";
  c.vocab_size = 97;
  c.hidden_size = 48;
  c.intermediate_size = 70;
  c.n_layers = 3;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.rms_eps = 1e-5f;
  c.rope_theta = 1e4f;
  c.attention_bias = arch == Arch::Qwen2;
  c.tie_embeddings = arch == Arch::Llama;
  return c;
}

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

std::vector<float> row(const HostTensor& t, int64_t r) {
  const int64_t n = t.shape[1];
  return {t.values.begin() + r * n, t.values.begin() + (r + 1) * n};
}

class TeacherTest : public ::testing::TestWithParam<Arch> {
 protected:
  MemoryCheckpoint ckpt{small_config(GetParam()), 7, GetParam() == Arch::Qwen2};
  std::unique_ptr<Ops> cpu = make_cpu_ops();
  std::unique_ptr<Ops> ref = make_reference_ops();
};

TEST_P(TeacherTest, CpuBackendMatchesReference) {
  Teacher fast(ckpt, *cpu), slow(ckpt, *ref);
  auto ids = random_ids(13, 97, 1);
  std::vector<int32_t> docs = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2};
  TeacherCapture cf, cr;
  EXPECT_LT(max_rel_error(fast.forward(ids, {}, &cf).values, slow.forward(ids, {}, &cr).values), 1e-4);
  for (size_t l = 0; l < cf.attn_output.size(); ++l)
    EXPECT_LT(max_rel_error(cf.attn_output[l].values, cr.attn_output[l].values), 1e-4) << "layer " << l;
  EXPECT_LT(max_rel_error(fast.forward(ids, docs).values, slow.forward(ids, docs).values), 1e-4);
}

TEST_P(TeacherTest, CaptureLayersEqualsTheCapturesOfForward) {  // what an align step reads, without the head
  Teacher model(ckpt, *cpu);
  auto ids = random_ids(13, 97, 4);
  std::vector<int32_t> docs = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2};
  TeacherCapture full, layers;
  model.forward(ids, docs, &full);
  model.capture_layers(ids, docs, layers);
  ASSERT_EQ(layers.attn_input.size(), full.attn_input.size());
  ASSERT_EQ(layers.attn_output.size(), full.attn_output.size());
  for (size_t l = 0; l < full.attn_output.size(); ++l) {
    EXPECT_EQ(layers.attn_input[l].values, full.attn_input[l].values) << "layer " << l;
    EXPECT_EQ(layers.attn_output[l].values, full.attn_output[l].values) << "layer " << l;
  }
  EXPECT_THROW(model.capture_layers({}, {}, layers), Error);
}

// What kd reads a chunk at a time: the final normed hidden states, then the head on rows of them.
TEST_P(TeacherTest, FinalHiddenThenHeadRowsEqualsForward) {
  for (Ops* ops : {cpu.get(), ref.get()}) {
    Teacher model(ckpt, *ops);
    auto ids = random_ids(13, 97, 5);
    std::vector<int32_t> docs = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2};
    TeacherCapture full, hid;
    const HostTensor logits = model.forward(ids, docs, &full);
    const HostTensor hidden = model.final_hidden(ids, docs, &hid);
    ASSERT_EQ(hidden.shape, (Shape{13, model.config().hidden_size}));
    EXPECT_EQ(hid.attn_output.back().values, full.attn_output.back().values);
    const int64_t V = model.config().vocab_size, C = model.config().hidden_size;
    Buffer buf = ops->alloc(static_cast<size_t>(5 * (V + C)) * 4);
    const Tensor h{buf.data(), Shape{5, C}, DType::F32, ops->device()};
    const Tensor l{static_cast<float*>(buf.data()) + 5 * C, Shape{5, V}, DType::F32, ops->device()};
    for (int64_t r0 : {0, 5, 8}) {  // overlapping chunks of 5 rows
      ops->upload(h, hidden.values.data() + r0 * C);
      model.head_rows(l, h);
      HostTensor got(Shape{5, V});
      ops->download(got.values.data(), l);
      const std::vector<float> want(logits.values.begin() + r0 * V, logits.values.begin() + (r0 + 5) * V);
      EXPECT_LT(max_rel_error(got.values, want), 1e-6) << ops->name() << " rows from " << r0;
    }
    EXPECT_THROW(model.head_rows(l.slice_rows(0, 4), h), Error);
  }
}

TEST_P(TeacherTest, KvCacheDecodeMatchesWholeSequence) {
  Teacher model(ckpt, *cpu);
  auto ids = random_ids(20, 97, 2);
  HostTensor whole = model.forward(ids);
  auto state = model.new_state(24);
  std::vector<float> last = model.extend(*state, std::span(ids).first(5));
  EXPECT_LT(max_rel_error(last, row(whole, 4)), 1e-4);
  for (size_t t = 5; t < ids.size(); ++t) {
    last = model.extend(*state, std::span(ids).subspan(t, 1));
    EXPECT_LT(max_rel_error(last, row(whole, static_cast<int64_t>(t))), 1e-4) << "token " << t;
  }
  EXPECT_EQ(state->n_tokens(), 20);
}

TEST_P(TeacherTest, LongPrefillRunsInChunks) {  // more tokens than one prefill chunk holds
  Teacher model(ckpt, *cpu);
  auto ids = random_ids(700, 97, 3);
  HostTensor whole = model.forward(ids);
  auto state = model.new_state(701);
  EXPECT_LT(max_rel_error(model.extend(*state, ids), row(whole, 699)), 1e-4);
}

TEST_P(TeacherTest, PackedDocumentsEqualSeparateRuns) {
  Teacher model(ckpt, *cpu);
  auto ids = random_ids(11, 97, 4);
  std::vector<int32_t> docs = {3, 3, 3, 3, 8, 8, 8, 8, 8, 1, 1};
  HostTensor packed = model.forward(ids, docs);
  size_t start = 0;
  for (size_t end : {4, 9, 11}) {
    HostTensor alone = model.forward(std::span(ids).subspan(start, end - start));
    for (size_t t = start; t < end; ++t)
      EXPECT_LT(max_rel_error(row(packed, static_cast<int64_t>(t)), row(alone, static_cast<int64_t>(t - start))), 1e-5)
          << "token " << t;
    start = end;
  }
}

TEST_P(TeacherTest, FullContextThrows) {
  Teacher model(ckpt, *cpu);
  auto state = model.new_state(4);
  model.extend(*state, random_ids(3, 97, 5));
  EXPECT_THROW(model.extend(*state, random_ids(2, 97, 6)), Error);
  EXPECT_NO_THROW(model.extend(*state, random_ids(1, 97, 7)));
}

TEST_P(TeacherTest, BadCheckpointThrows) {
  MemoryCheckpoint missing = ckpt;
  missing.tensors_.erase("model.layers.1.mlp.up_proj.weight");
  EXPECT_THROW(Teacher(missing, *cpu), Error);
  MemoryCheckpoint wrong = ckpt;
  wrong.tensors_["model.layers.0.self_attn.k_proj.weight"] = HostTensor(Shape{48, 48});
  EXPECT_THROW(Teacher(wrong, *cpu), Error);
  Teacher model(ckpt, *cpu);
  std::vector<int32_t> bad = {1, 97};
  EXPECT_THROW(model.forward(bad), Error);
}

// An untied config without lm_head.weight falls back to the embedding, as HF does.
TEST(TeacherHead, MissingHeadMeansTied) {
  ModelConfig cfg = small_config(Arch::Qwen2);
  MemoryCheckpoint untied(cfg, 9, false);
  cfg.tie_embeddings = true;
  MemoryCheckpoint tied(cfg, 9, false);
  auto ops = make_cpu_ops();
  Teacher a(untied, *ops), b(tied, *ops);
  auto ids = random_ids(6, 97, 10);
  EXPECT_EQ(a.forward(ids).values, b.forward(ids).values);
  EXPECT_TRUE(a.config().tie_embeddings);
}

INSTANTIATE_TEST_SUITE_P(Archs, TeacherTest, ::testing::Values(Arch::Llama, Arch::Qwen2),
                         [](const auto& info) { return info.param == Arch::Qwen2 ? "qwen2" : "llama"; });

}  // namespace
}  // namespace arwkv
