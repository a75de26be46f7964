// Student config.json round trip and errors, the tensor list, and checkpoint write/open.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/student/student_checkpoint.h"
#include "model/student/student_config.h"
#include "test_util.h"

namespace arwkv {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

StudentConfig tiny(bool gate, bool group_norm, std::vector<int> wkv, bool tied) {
  ModelConfig b;
  b.arch = Arch::Qwen2;
  b.arch_name = "qwen2";
  b.vocab_size = 50, b.hidden_size = 128, b.intermediate_size = 96, b.n_layers = 3;
  b.n_heads = 4, b.n_kv_heads = 2, b.head_dim = 32, b.max_position = 256;
  b.rms_eps = 1e-5f, b.rope_theta = 1e6f, b.attention_bias = true, b.tie_embeddings = tied;
  b.bos_token_id = 1, b.eos_token_ids = {2, 3};
  StudentConfig c = make_student_config(b, 16, 12, 8, 20, gate);
  c.has_group_norm = group_norm;
  c.wkv_layers = std::move(wkv);
  return c;
}

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("arwkv_student_" + name + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

TEST(StudentConfig, JsonRoundTrip) {
  const StudentConfig c = tiny(false, true, {0, 2}, false);
  const json j = student_config_to_json(c);
  EXPECT_EQ(j["architectures"][0], "RwkvHybridForCausalLM");
  EXPECT_EQ(j["model_type"], "rwkv_hybrid");
  EXPECT_EQ(j["teacher_model_type"], "qwen2");
  EXPECT_EQ(j["wkv_version"], 7);
  EXPECT_EQ(j["gate_lora_rank"], 0);
  const StudentConfig r = student_config_from_json(j, "x/config.json");
  EXPECT_EQ(r.base.arch, Arch::Qwen2);
  EXPECT_EQ(r.base.hidden_size, 128);
  EXPECT_EQ(r.base.n_kv_heads, 2);
  EXPECT_EQ(r.base.head_dim, 32);
  EXPECT_FLOAT_EQ(r.base.rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(r.base.rms_eps, 1e-5f);
  EXPECT_EQ(r.base.eos_token_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(r.base.bos_token_id, 1);
  EXPECT_FALSE(r.has_gate);
  EXPECT_TRUE(r.has_group_norm);
  EXPECT_EQ(r.wkv_layers, (std::vector<int>{0, 2}));
  EXPECT_EQ(r.decay_lora, 16);
  EXPECT_EQ(r.iclr_lora, 12);
  EXPECT_EQ(r.value_lora, 8);
  EXPECT_EQ(r.head_size, 64);
}

TEST(StudentConfig, BadFieldsNameTheFile) {
  const json good = student_config_to_json(tiny(true, false, {0, 1, 2}, true));
  auto expect_error = [&](json j, const std::string& what) {
    try {
      student_config_from_json(j, "some/config.json");
      ADD_FAILURE() << "accepted " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("some/config.json"), std::string::npos) << e.what();
    }
  };
  json j = good;
  j.erase("wkv_layers");
  expect_error(j, "no wkv_layers");
  j = good, j["wkv_layers"] = {0, 3};
  expect_error(j, "layer out of range");
  j = good, j["wkv_layers"] = {1, 1};
  expect_error(j, "repeated layer");
  j = good, j["head_size"] = 48;
  expect_error(j, "head size not dividing C");
  j = good, j["wkv_version"] = 6;
  expect_error(j, "wkv 6");
  j = good, j["model_type"] = "qwen2";
  expect_error(j, "teacher model_type");
  j = good, j.erase("teacher_model_type");
  expect_error(j, "no teacher type");
  j = good, j["decay_lora_rank"] = 0;
  expect_error(j, "zero rank");
  j = good, j["wkv_has_gate"] = "yes";
  expect_error(j, "string bool");
  j = good, j.erase("hidden_size");
  expect_error(j, "no hidden size");
}

TEST(StudentConfig, TensorList) {
  const StudentConfig c = tiny(true, false, {0, 1, 2}, true);
  std::map<std::string, Shape> m;
  for (const TensorSpec& s : student_tensor_list(c)) {
    EXPECT_TRUE(m.emplace(s.name, s.shape).second) << "twice: " << s.name;
  }
  EXPECT_EQ(m.count("lm_head.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.1.self_attn.q_proj.weight"), 0u);
  EXPECT_EQ(m.at("model.layers.1.self_attn.time_mixer.w1"), (Shape{128, 16}));
  EXPECT_EQ(m.at("model.layers.1.self_attn.time_mixer.v2"), (Shape{8, 128}));
  EXPECT_EQ(m.at("model.layers.2.self_attn.time_mixer.g2"), (Shape{20, 128}));
  EXPECT_EQ(m.at("model.layers.2.self_attn.time_mixer.r_k"), (Shape{2, 64}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.time_mixer.x_g"), (Shape{1, 1, 128}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.time_mixer.v0"), 0u);  // layer 0 makes v_first
  EXPECT_EQ(m.count("model.layers.0.self_attn.time_mixer.ln_x.weight"), 0u);
  EXPECT_EQ(m.at("model.layers.2.mlp.down_proj.weight"), (Shape{128, 96}));
  // Per layer: 6 lerps, 4 projections, 3+3 LoRA, gate 2, k_k, k_a, r_k (+3 value residual after layer 0).
  EXPECT_EQ(m.size(), 1u + 3 * (2 + 3 + 21) + 2 * 3 + 1);

  const StudentConfig h = tiny(false, true, {1, 2}, false);
  std::map<std::string, Shape> hm;
  for (const TensorSpec& s : student_tensor_list(h)) hm.emplace(s.name, s.shape);
  EXPECT_EQ(hm.at("model.layers.0.self_attn.q_proj.bias"), (Shape{128}));
  EXPECT_EQ(hm.at("model.layers.0.self_attn.k_proj.weight"), (Shape{64, 128}));
  EXPECT_EQ(hm.count("model.layers.1.self_attn.time_mixer.v0"), 0u);  // first time-mix layer
  EXPECT_EQ(hm.at("model.layers.2.self_attn.time_mixer.v0"), (Shape{1, 1, 128}));
  EXPECT_EQ(hm.count("model.layers.2.self_attn.time_mixer.x_g"), 0u);
  EXPECT_EQ(hm.count("model.layers.2.self_attn.time_mixer.g1"), 0u);
  EXPECT_EQ(hm.at("model.layers.2.self_attn.time_mixer.ln_x.bias"), (Shape{128}));
  EXPECT_EQ(hm.at("lm_head.weight"), (Shape{50, 128}));
}

TEST(StudentCheckpoint, WriteThenOpen) {
  const std::string dir = temp_dir("rt");
  const StudentConfig c = tiny(true, true, {0, 2}, false);
  uint64_t seed = 1;
  std::map<std::string, HostTensor> written;
  write_student_checkpoint(dir, c, [&](const TensorSpec& s) {
    HostTensor t(s.shape);
    t.values = test::random_vector(t.values.size(), seed++);
    written[s.name] = t;
    return t;
  });
  ASSERT_TRUE(is_student_checkpoint(dir));
  auto ck = StudentCheckpoint::open(dir);
  EXPECT_EQ(ck->config().wkv_layers, c.wkv_layers);
  for (const auto& [name, t] : written) EXPECT_EQ(ck->load(name).values, t.values) << name;
  EXPECT_TRUE(ck->tokenizer_json_path().empty());
  fs::remove_all(dir);
}

TEST(StudentCheckpoint, ShapeAndNameErrors) {
  const std::string dir = temp_dir("err");
  StudentConfig c = tiny(true, false, {0, 1, 2}, true);
  write_student_checkpoint(dir, c, [](const TensorSpec& s) { return HostTensor(s.shape); });
  StudentConfig wrong = c;
  wrong.decay_lora = 32;  // config now disagrees with the stored w1/w2
  save_student_config(wrong, dir + "/config.json");
  EXPECT_THROW(StudentCheckpoint::open(dir), Error);
  wrong = c;
  wrong.has_gate = false, wrong.gate_lora = 0;  // g1/g2/x_g become unexpected
  save_student_config(wrong, dir + "/config.json");
  try {
    StudentCheckpoint::open(dir);
    ADD_FAILURE() << "accepted unexpected tensors";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected tensor"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(is_student_checkpoint(test::data_path("teacher/qwen2_tiny")));
  EXPECT_THROW(StudentCheckpoint::open(test::data_path("teacher/qwen2_tiny")), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace arwkv
