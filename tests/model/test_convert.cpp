// arwkv convert on the tiny Qwen2/Llama teachers: the written directory reloads with every tensor
// of the student's list; transfer copies q/o and the GQA-expanded k/v (rows checked by index
// arithmetic here); copied tensors equal the teacher's; the init formulas of SPEC §3, evaluated here
// in double, hold at sample (layer, channel) points; w2/a2/v2 are orthogonal with gain 0.1; the gate
// starts at exactly 1; a seed gives the same bytes; every refusal names the teacher and leaves no
// directory behind.
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher_tensors.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class ConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / fmt::format("arwkv_convert_test_{}", ::getpid());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string dir(const std::string& name) const { return (root_ / name).string(); }

  ConvertReport convert(const std::string& teacher, const std::string& out, InitKind init, uint64_t seed = 1) {
    ConvertOptions o;
    o.teacher = teacher;
    o.out = dir(out);
    o.init = init;
    o.seed = seed;
    return convert_teacher(o);
  }

  // The refusal's message names `needle` and neither the directory nor a temporary sibling exists.
  void expect_refusal(const ConvertOptions& o, const std::string& needle) {
    try {
      convert_teacher(o);
      ADD_FAILURE() << "no error for " << o.out;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.out)) << o.out;
    for (const auto& entry : fs::directory_iterator(fs::path(o.out).parent_path()))
      EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }

  fs::path root_;
};

std::string teacher_dir(const std::string& name) { return test::data_path("teacher/" + name); }

const float* row(const HostTensor& t, int64_t r) { return t.values.data() + r * t.shape[t.shape.ndim - 1]; }

void expect_rows_equal(const HostTensor& a, int64_t ra, const HostTensor& b, int64_t rb, const std::string& what) {
  const int64_t n = a.shape[a.shape.ndim - 1];
  ASSERT_EQ(n, b.shape[b.shape.ndim - 1]);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(row(a, ra)[i], row(b, rb)[i]) << what << " row " << ra << " col " << i;
}

// Every tensor of the student's list loads with its shape; the config matches the teacher.
void expect_reloads(const std::string& path, const ModelConfig& teacher, const ConvertReport& report) {
  const auto student = StudentCheckpoint::open(path);
  const StudentConfig& c = student->config();
  EXPECT_EQ(c.base.hidden_size, teacher.hidden_size);
  EXPECT_EQ(c.base.n_layers, teacher.n_layers);
  EXPECT_EQ(c.base.vocab_size, teacher.vocab_size);
  EXPECT_EQ(c.base.tie_embeddings, teacher.tie_embeddings);
  EXPECT_EQ(c.wkv_layers, report.config.wkv_layers);
  EXPECT_EQ(c.decay_lora, report.config.decay_lora);
  EXPECT_EQ(c.gate_lora, report.config.gate_lora);
  int64_t n = 0;
  for (const TensorSpec& s : student_tensor_list(c)) {
    EXPECT_EQ(student->load(s.name).shape, s.shape) << s.name;
    ++n;
  }
  EXPECT_EQ(n, report.n_tensors);
  EXPECT_EQ(student->has("lm_head.weight"), !teacher.tie_embeddings);
}

TEST_F(ConvertTest, TransferCopiesAndExpandsTheTeachersAttention) {
  for (const char* name : {"qwen2_tiny", "llama_tiny"}) {
    SCOPED_TRACE(name);
    const auto teacher = Checkpoint::open(teacher_dir(name));
    const ModelConfig& t = teacher->config();
    const ConvertReport report = convert(teacher_dir(name), name, InitKind::Transfer);
    expect_reloads(dir(name), t, report);
    // Size formula for C = 64: 1.8·8 = 14.4, 1.3·8 = 10.4, 0.6·64^0.8 = 16.7 → all max(32, 0) = 32.
    EXPECT_EQ(report.config.decay_lora, 32);
    EXPECT_EQ(report.config.gate_lora, 32);
    const auto student = StudentCheckpoint::open(dir(name));
    const int64_t group = t.n_heads / t.n_kv_heads, hd = t.head_dim;
    for (int64_t l = 0; l < t.n_layers; ++l) {
      auto s = [&](const char* suffix) { return student->load(time_mixer_name(l, suffix)); };
      auto q = [&](const char* suffix) { return teacher->load(layer_tensor_name(l, suffix)); };
      EXPECT_EQ(s("receptance.weight").values, q("self_attn.q_proj.weight").values);
      EXPECT_EQ(s("output.weight").values, q("self_attn.o_proj.weight").values);
      const HostTensor key = s("key.weight"), value = s("value.weight");
      const HostTensor k = q("self_attn.k_proj.weight"), v = q("self_attn.v_proj.weight");
      for (int64_t r : {int64_t{0}, int64_t{1}, hd - 1, hd, hd + 3, 2 * hd + 5, t.hidden_size - 1}) {
        if (r >= t.hidden_size) continue;
        const int64_t head = r / hd, within = r % hd, kv_row = (head / group) * hd + within;
        expect_rows_equal(key, r, k, kv_row, "key");
        expect_rows_equal(value, r, v, kv_row, "value");
      }
    }
    for (const char* copied : {"model.embed_tokens.weight", "model.norm.weight", "model.layers.1.mlp.down_proj.weight",
                               "model.layers.0.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight"})
      EXPECT_EQ(student->load(copied).values, teacher->load(copied).values) << copied;
    if (!t.tie_embeddings) {
      EXPECT_EQ(student->load("lm_head.weight").values, teacher->load("lm_head.weight").values);
    }
  }
}

double x_formula(const std::string& which, double l, double L, double n, double C) {
  const double ddd = n / C, r01 = l / (L - 1), r10 = 1 - l / L;
  if (which == "x_r") return 1 - std::pow(ddd, 0.2 * r10);
  if (which == "x_w" || which == "x_a") return 1 - std::pow(ddd, 0.9 * r10);
  if (which == "x_k") return 1 - (std::pow(ddd, 0.9 * r10) + 0.4 * r01);
  if (which == "x_v") return 1 - (std::pow(ddd, 0.4 * r10) + 0.6 * r01);
  return 1.0;  // x_g
}

TEST_F(ConvertTest, ArwkvInitFollowsTheSpecFormulas) {
  const std::string name = "llama_tiny";
  const ConvertReport report = convert(teacher_dir(name), name, InitKind::Arwkv);
  const auto teacher = Checkpoint::open(teacher_dir(name));
  expect_reloads(dir(name), teacher->config(), report);
  const auto student = StudentCheckpoint::open(dir(name));
  const double C = 64, L = 2;
  EXPECT_EQ(report.config.decay_lora, 64);
  EXPECT_EQ(report.config.iclr_lora, 64);
  EXPECT_EQ(report.config.value_lora, 32);
  EXPECT_EQ(report.config.gate_lora, 128);
  for (int l : {0, 1}) {
    auto s = [&](const std::string& suffix) { return student->load(time_mixer_name(l, suffix)); };
    for (const char* which : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) {
      const HostTensor x = s(which);
      for (int n : {0, 1, 17, 40, 63})
        EXPECT_NEAR(x.values[n], x_formula(which, l, L, n, C), 1e-6) << which << " layer " << l << " channel " << n;
    }
    const HostTensor w0 = s("w0");
    for (int n : {0, 5, 33, 63}) {
      const double expect = -7 + 5 * std::pow(n / (C - 1), 0.85 + std::sqrt(l / (L - 1))) + 0.5;
      EXPECT_NEAR(w0.values[n], expect, 1e-5) << "w0 layer " << l << " channel " << n;
    }
    auto all_equal = [&](const std::string& suffix, float value) {
      for (float v : s(suffix).values) ASSERT_EQ(v, value) << suffix << " layer " << l;
    };
    all_equal("w1", 0.0f);
    all_equal("a1", 0.0f);
    all_equal("g1", 0.0f);
    all_equal("a0", 0.0f);
    all_equal("k_k", 0.85f);
    all_equal("k_a", 1.0f);
    all_equal("r_k", 0.0f);
    if (l > 0) {
      all_equal("v1", 0.0f);
      all_equal("v0", 1.0f);
    }
    // Fresh r/k/v/o: mean ≈ 0, std ≈ 1/√C.
    const HostTensor r = s("receptance.weight");
    double sum = 0, sq = 0;
    for (float v : r.values) sum += v, sq += static_cast<double>(v) * v;
    const double mean = sum / r.values.size(), std_dev = std::sqrt(sq / r.values.size() - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.01);
    EXPECT_NEAR(std_dev, 1.0 / 8.0, 0.01);
  }
  // The first time-mix layer makes v_first and has no value-residual LoRA.
  EXPECT_FALSE(student->has(time_mixer_name(0, "v0")));
  EXPECT_TRUE(student->has(time_mixer_name(1, "v2")));
}

// W·Wᵀ = gain²·I for rank ≤ C (rows orthonormal), Wᵀ·W = gain²·I otherwise.
void expect_orthogonal(const HostTensor& w, double gain, const std::string& what) {
  const int64_t rows = w.shape[0], cols = w.shape[1];
  const bool by_rows = rows <= cols;
  const int64_t count = by_rows ? rows : cols, len = by_rows ? cols : rows;
  auto at = [&](int64_t vec, int64_t e) {
    return static_cast<double>(by_rows ? w.values[vec * cols + e] : w.values[e * cols + vec]);
  };
  double worst = 0;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < count; ++j) {
      double dot = 0;
      for (int64_t e = 0; e < len; ++e) dot += at(i, e) * at(j, e);
      worst = std::max(worst, std::fabs(dot - (i == j ? gain * gain : 0.0)));
    }
  EXPECT_LT(worst, 1e-6) << what;
}

TEST_F(ConvertTest, LoraMatricesAreOrthogonalAndTheGateStartsAtOne) {
  convert(teacher_dir("qwen2_tiny"), "arwkv", InitKind::Arwkv);
  convert(teacher_dir("qwen2_tiny"), "transfer", InitKind::Transfer);
  for (const char* name : {"arwkv", "transfer"}) {
    const auto student = StudentCheckpoint::open(dir(name));
    for (const char* m : {"w2", "a2"}) expect_orthogonal(student->load(time_mixer_name(1, m)), 0.1, m);
    expect_orthogonal(student->load(time_mixer_name(1, "v2")), 0.1, "v2");
    // g = sigmoid(x_g·g1)·g2 with g1 = 0: 0.5·Σ_d g2[d, c] must be 1 for every channel.
    const HostTensor g2 = student->load(time_mixer_name(0, "g2"));
    const int64_t rank = g2.shape[0], C = g2.shape[1];
    for (int64_t c = 0; c < C; ++c) {
      double sum = 0;
      for (int64_t d = 0; d < rank; ++d) sum += g2.values[d * C + c];
      EXPECT_NEAR(0.5 * sum, 1.0, 1e-5) << name << " channel " << c;
    }
    EXPECT_NE(g2.values[0], g2.values[C]) << "rows of g2 should differ";
  }
  // Square (64×64) and wide (32×64) orthogonal inits directly, and a tall one (rank > C).
  expect_orthogonal(orthogonal_init(64, 64, 0.1, 3, "sq"), 0.1, "square");
  expect_orthogonal(orthogonal_init(128, 64, 0.1, 3, "tall"), 0.1, "tall");
  expect_orthogonal(orthogonal_init(7, 33, 0.5, 3, "odd"), 0.5, "odd");
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(ConvertTest, SameSeedSameBytes) {
  convert(teacher_dir("qwen2_tiny"), "a", InitKind::Arwkv, 7);
  convert(teacher_dir("qwen2_tiny"), "b", InitKind::Arwkv, 7);
  convert(teacher_dir("qwen2_tiny"), "c", InitKind::Arwkv, 8);
  const std::string a = file_bytes(dir("a") + "/model.safetensors");
  EXPECT_EQ(a, file_bytes(dir("b") + "/model.safetensors"));
  EXPECT_NE(a, file_bytes(dir("c") + "/model.safetensors"));
  EXPECT_EQ(file_bytes(dir("a") + "/config.json"), file_bytes(dir("c") + "/config.json"));
}

TEST_F(ConvertTest, KeptAttentionLayersKeepTheTeachersWeights) {
  ConvertOptions o;
  o.teacher = teacher_dir("qwen2_tiny");
  o.out = dir("hybrid");
  o.keep_attention = {0};
  o.group_norm = true;
  o.gate = false;
  const ConvertReport report = convert_teacher(o);
  EXPECT_EQ(report.config.wkv_layers, std::vector<int>{1});
  const auto teacher = Checkpoint::open(o.teacher);
  expect_reloads(o.out, teacher->config(), report);
  const auto student = StudentCheckpoint::open(o.out);
  for (const char* p : {"self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.bias",
                        "self_attn.v_proj.weight", "self_attn.o_proj.weight"})
    EXPECT_EQ(student->load(layer_tensor_name(0, p)).values, teacher->load(layer_tensor_name(0, p)).values) << p;
  EXPECT_FALSE(student->has(layer_tensor_name(1, "self_attn.q_proj.weight")));
  EXPECT_FALSE(student->has(time_mixer_name(1, "v0")));  // layer 1 is the first time-mix layer
  EXPECT_FALSE(student->has(time_mixer_name(1, "g1")));
  EXPECT_TRUE(student->has(time_mixer_name(1, "ln_x.weight")));
}

// Teachers whose layers differ by family: Qwen3 (per-head q/k norms) and Llama 3 (scaled RoPE
// frequencies), both 128 wide over a hidden size of 64, so transfer is refused; Mistral (a sliding
// window of 4 keys); Gemma 3 (norms after attention and MLP, GeGLU, a scaled embedding, five local
// layers and a global one). A student keeping every layer's attention but the last's, whose time
// mixing is silenced (output.weight zero), gives the logits transformers gives with that layer's
// o_proj zeroed, from the safetensors and (where there is one) the GGUF teacher alike.
TEST_F(ConvertTest, HybridStudentsKeepTheirFamilysAttention) {
  const std::vector<int32_t> ids = {1, 17, 250, 3, 99, 299, 0, 45, 45, 180, 7, 211};  // the oracle's sequence 0
  for (const std::string model : {"qwen3_tiny", "llama3_tiny", "mistral_tiny", "gemma3_tiny"}) {
    ConvertOptions o;
    o.teacher = teacher_dir(model);
    o.out = dir(model + "_transfer");
    if (model != "mistral_tiny") expect_refusal(o, "transfer init needs n_heads·head_dim == hidden size");
    const std::vector<float> want = test::read_f32_file(teacher_dir(model + "/logits_last_attn_off_0.f32"));
    std::vector<std::string> teachers = {model};
    if (fs::exists(teacher_dir(model + "/model-f32.gguf"))) teachers.push_back(model + "/model-f32.gguf");
  for (const std::string& teacher : teachers) {
    SCOPED_TRACE(teacher);
    o.teacher = teacher_dir(teacher);
    o.out = dir(fmt::format("{}_{}", model, teacher.size()));
    o.init = InitKind::Arwkv;
    const ModelConfig tc = Checkpoint::open(o.teacher)->config();
    const int last = static_cast<int>(tc.n_layers) - 1;
    o.keep_attention.clear();
    for (int l = 0; l < last; ++l) o.keep_attention.push_back(l);
    const ConvertReport report = convert_teacher(o);
    expect_reloads(o.out, tc, report);
    const auto converted = StudentCheckpoint::open(o.out);
    EXPECT_EQ(converted->config().base.arch, tc.arch);
    EXPECT_EQ(converted->config().base.rope_freq_factors, tc.rope_freq_factors);
    EXPECT_EQ(tc.rope_freq_factors.empty(), model != "llama3_tiny");
    EXPECT_EQ(converted->has(layer_tensor_name(0, "self_attn.q_norm.weight")), family(tc.arch).qk_norm);
    EXPECT_FALSE(converted->has(layer_tensor_name(last, "self_attn.k_norm.weight")));
    EXPECT_EQ(converted->has(layer_tensor_name(last, "post_feedforward_layernorm.weight")), model == "gemma3_tiny");
    EXPECT_EQ(converted->config().base.sliding_window, model == "mistral_tiny" || model == "gemma3_tiny" ? 4 : 0);
    EXPECT_EQ(converted->config().base.local_layers, tc.local_layers);
    EXPECT_EQ(converted->config().base.rope_local_theta, tc.rope_local_theta);
    EXPECT_EQ(converted->config().base.attn_scale, tc.attn_scale);
    const std::string silenced = o.out + "-silenced";
    write_student_checkpoint(silenced, converted->config(), [&](const TensorSpec& s) {
      HostTensor t = converted->load(s.name);
      if (s.name == time_mixer_name(last, "output.weight")) std::fill(t.values.begin(), t.values.end(), 0.0f);
      return t;
    });
    const auto ckpt = StudentCheckpoint::open(silenced);
    const std::unique_ptr<Ops> ops = make_cpu_ops();
    const Student student(*ckpt, *ops);
    const HostTensor got = student.forward(ids);
    ASSERT_EQ(got.values.size(), want.size());
    EXPECT_LT(test::max_rel_error(got.values, want), 1e-4);
  }
  }
}

TEST_F(ConvertTest, GgufTeacherGetsATokenizerJson) {
  const std::string gguf = teacher_dir("qwen2_tiny/model-f32.gguf");
  convert(gguf, "from_gguf", InitKind::Transfer);
  const std::string tj = dir("from_gguf") + "/tokenizer.json";
  ASSERT_TRUE(fs::exists(tj));
  ASSERT_TRUE(fs::exists(dir("from_gguf") + "/generation_config.json"));
  const auto ck = Checkpoint::open(gguf);
  const auto original = load_tokenizer(*ck);
  const Tokenizer written(load_tokenizer_json(tj));
  for (const char* text : {"Hello, world!", "<|im_start|>user\nhi<|im_end|>", "numbers 12345 and ünïcode"})
    EXPECT_EQ(written.encode(text), original->encode(text)) << text;
  EXPECT_EQ(written.data().eos_id, original->data().eos_id);
  // The HF teacher's generation_config.json travels with the student.
  convert(teacher_dir("llama_tiny"), "from_hf", InitKind::Transfer);
  EXPECT_EQ(file_bytes(dir("from_hf") + "/generation_config.json"),
            file_bytes(teacher_dir("llama_tiny/generation_config.json")));
}

std::string fake_teacher(const fs::path& dir, const json& config);
json small_config();

TEST_F(ConvertTest, HfTeacherTokenizerIsCopied) {
  const fs::path teacher = root_ / "teachers" / "with_tokenizer";
  fake_teacher(teacher, small_config());
  const std::string tokenizer = test::data_path("tokenizer/tiny_tokenizer.json");
  fs::copy_file(tokenizer, teacher / "tokenizer.json");
  const ConvertReport report = convert(teacher.string(), "copied", InitKind::Arwkv);
  EXPECT_NE(report.tokenizer.find("copied"), std::string::npos) << report.tokenizer;
  EXPECT_EQ(file_bytes(dir("copied") + "/tokenizer.json"), file_bytes(tokenizer));
  EXPECT_EQ(StudentCheckpoint::open(dir("copied"))->tokenizer_json_path(), dir("copied") + "/tokenizer.json");
}

// A teacher directory with this config.json and zero weights of the tensor list of the same config
// read as a Llama.
std::string fake_teacher(const fs::path& dir, const json& config) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config.dump();
  SafetensorsWriter w;
  json as_llama = config;
  as_llama["model_type"] = "llama";
  const ModelConfig c = config_from_hf_json(as_llama, "fake");
  for (const TensorSpec& s : teacher_tensors(c))
    if (s.required) w.add(s.name, HostTensor(s.shape));
  w.write((dir / "model.safetensors").string());
  return dir.string();
}

json small_config() {
  return {{"model_type", "llama"},       {"hidden_size", 64},        {"intermediate_size", 32},
          {"num_hidden_layers", 2},      {"num_attention_heads", 2}, {"num_key_value_heads", 1},
          {"vocab_size", 20},            {"rms_norm_eps", 1e-5},     {"tie_word_embeddings", true},
          {"max_position_embeddings", 64}};
}

TEST_F(ConvertTest, RefusalsNameTheTeacherAndLeaveNoDirectory) {
  ConvertOptions o;
  o.teacher = teacher_dir("qwen2_tiny");
  o.out = dir("refused");
  o.keep_attention = {2};
  expect_refusal(o, "out of range");
  o.keep_attention = {0, 1};
  expect_refusal(o, "keeps every layer");
  o.keep_attention = {};
  o.lora_ranks = LoraRanks{32, 0, 32, 32};
  expect_refusal(o, "bad LoRA ranks");
  o.lora_ranks.reset();

  json unknown = small_config();
  unknown["model_type"] = "falcon";
  o.teacher = fake_teacher(root_ / "teachers" / "falcon", unknown);
  expect_refusal(o, "unsupported architecture");

  json wide = small_config();
  wide["hidden_size"] = 96;
  wide["num_attention_heads"] = 3;
  o.teacher = fake_teacher(root_ / "teachers" / "wide", wide);
  expect_refusal(o, "not a multiple of the head size 64");
  EXPECT_NE(std::string(o.teacher).find("wide"), std::string::npos);

  json narrow_heads = small_config();
  narrow_heads["head_dim"] = 16;  // 2 heads × 16 = 32 ≠ 64
  o.teacher = fake_teacher(root_ / "teachers" / "narrow", narrow_heads);
  expect_refusal(o, "transfer init needs n_heads·head_dim == hidden size");
  o.init = InitKind::Arwkv;  // fresh r/k/v/o need no such thing
  EXPECT_NO_THROW(convert_teacher(o));
  EXPECT_TRUE(fs::exists(o.out + "/model.safetensors"));
}

TEST_F(ConvertTest, ExistingDirectoryNeedsForce) {
  fs::create_directories(dir("full"));
  std::ofstream(dir("full") + "/keep.txt") << "mine";
  ConvertOptions o;
  o.teacher = teacher_dir("llama_tiny");
  o.out = dir("full");
  EXPECT_THROW(convert_teacher(o), Error);
  EXPECT_TRUE(fs::exists(dir("full") + "/keep.txt"));
  o.force = true;
  convert_teacher(o);
  EXPECT_FALSE(fs::exists(dir("full") + "/keep.txt"));
  EXPECT_TRUE(fs::exists(dir("full") + "/model.safetensors"));
  fs::create_directories(dir("empty"));
  o.out = dir("empty");
  o.force = false;
  EXPECT_NO_THROW(convert_teacher(o));
  // The output may not hold the teacher, even with --force.
  o.out = teacher_dir("");
  o.force = true;
  EXPECT_THROW(convert_teacher(o), Error);
  EXPECT_TRUE(fs::exists(teacher_dir("llama_tiny/model.safetensors")));
}

TEST(ConvertRanks, SizeFormula) {
  // f = 1.8·√896 = 53.9 → 64; 1.3·√896 = 38.9 → 32; 0.6·896^0.8 = 138.4 → 128 (Qwen2.5-0.5B).
  const LoraRanks r = lora_ranks_for_size(896);
  EXPECT_EQ(r.decay, 64);
  EXPECT_EQ(r.iclr, 64);
  EXPECT_EQ(r.value, 32);
  EXPECT_EQ(r.gate, 128);
  // C = 4096: 115.2 → 128; 83.2 → 96; 0.6·4096^0.8 = 471.0 → 480.
  const LoraRanks big = lora_ranks_for_size(4096);
  EXPECT_EQ(big.decay, 128);
  EXPECT_EQ(big.value, 96);
  EXPECT_EQ(big.gate, 480);
}

TEST(ConvertCli, BadOptionsExitNonZeroNamingTheTeacher) {
  const std::string bin = test::arwkv_bin();
  ARWKV_REQUIRE_FILE(bin);
  const fs::path out = fs::temp_directory_path() / fmt::format("arwkv_convert_cli_{}", ::getpid());
  const std::string teacher = teacher_dir("qwen2_tiny");
  for (const std::string args : {"--lora-ranks 32,x,32,32", "--lora-ranks 32,32", "--keep-attention 9"}) {
    const std::string cmd = fmt::format("{} convert --teacher {} --out {} {} 2>&1", bin, teacher, out.string(), args);
    FILE* p = popen(cmd.c_str(), "r");
    std::string output;
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) output.append(buf.data(), n);
    const int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << args;
    EXPECT_NE(output.find(teacher), std::string::npos) << args << ": " << output;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

}  // namespace
}  // namespace arwkv
