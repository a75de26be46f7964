// config.json parsing rules (FORMATS.md §7): defaults, rope_theta locations, eos forms, Qwen2
// biases, unsupported architectures and rope scaling.
#include <nlohmann/json.hpp>

#include "format_test_util.h"
#include "formats/hf_config.h"

namespace arwkv {
namespace {

nlohmann::json smollm2_like() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
    "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
    "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000, "rope_scaling": null,
    "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "rope_interleaved": false})");
}

// The error a config gives, "" for none.
std::string error_of(const nlohmann::json& j) {
  try {
    config_from_hf_json(j, "/some/dir/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfConfig, LlamaFields) {
  const ModelConfig c = config_from_hf_json(smollm2_like(), "config.json");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.arch_name, "llama");
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position, 8192);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
}

TEST(HfConfig, DefaultsAndAlternatives) {
  nlohmann::json j = smollm2_like();
  j.erase("num_key_value_heads");
  j.erase("rope_theta");
  j.erase("tie_word_embeddings");
  j.erase("rms_norm_eps");
  j["head_dim"] = 32;
  j["eos_token_id"] = {2, 7};
  ModelConfig c = config_from_hf_json(j, "config.json");
  EXPECT_EQ(c.n_kv_heads, 9);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2, 7}));

  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  j["num_key_value_heads"] = nullptr;
  c = config_from_hf_json(j, "config.json");
  EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
  EXPECT_EQ(c.n_kv_heads, 9);
}

TEST(HfConfig, Qwen2HasAttentionBias) {
  const nlohmann::json j = nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
    "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "eos_token_id": 151645,
    "sliding_window": 32768, "use_sliding_window": false})");
  const ModelConfig c = config_from_hf_json(j, "config.json");
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position, 32768);  // Qwen2Config default
  EXPECT_EQ(c.bos_token_id, -1);
  const auto list = teacher_tensor_list(c);
  EXPECT_EQ(list.size(), 1 + 24 * 12 + 1u);  // tied: no lm_head
  EXPECT_EQ(list[4].first, "model.layers.0.self_attn.v_proj.weight");
  EXPECT_EQ(list[4].second, (Shape{128, 896}));
  EXPECT_EQ(list[5].first, "model.layers.0.self_attn.q_proj.bias");
}

// Qwen3-0.6B's published config.json: per-head q/k norms, explicit head_dim 128 (16 heads: an
// attention 2048 wide over a hidden size of 1024), no biases, max_position from the file.
TEST(HfConfig, Qwen3HasHeadNormsAndItsOwnHeadDim) {
  const nlohmann::json j = nlohmann::json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024,
    "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "head_dim": 128, "attention_bias": false, "max_position_embeddings": 40960, "rope_theta": 1000000,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151645,
    "sliding_window": null, "use_sliding_window": false, "max_window_layers": 28})");
  const ModelConfig c = config_from_hf_json(j, "config.json");
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_FALSE(has_qkv_bias(c));
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position, 40960);
  const auto list = teacher_tensor_list(c);
  EXPECT_EQ(list.size(), 1 + 28 * 11 + 1u);  // tied: no lm_head
  EXPECT_EQ(list[2].first, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(list[2].second, (Shape{2048, 1024}));
  EXPECT_EQ(list[5].first, "model.layers.0.self_attn.q_norm.weight");
  EXPECT_EQ(list[5].second, (Shape{128}));
  EXPECT_EQ(list[7].first, "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(list[7].second, (Shape{1024, 2048}));
}

// Gemma 3 270M's config.json (transformers' Gemma3TextConfig), with the older sliding_window_pattern
// in place of layer_types: every sixth layer global, the others local with their own RoPE base.
TEST(HfConfig, Gemma3LayersAndNorms) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 640,
    "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
    "head_dim": 256, "query_pre_attn_scalar": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
    "rope_scaling": null, "sliding_window": 512, "sliding_window_pattern": 6, "rms_norm_eps": 1e-06,
    "attn_logit_softcapping": null, "final_logit_softcapping": null, "tie_word_embeddings": true,
    "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0})");
  const ModelConfig c = config_from_hf_json(j, "config.json");
  EXPECT_EQ(c.arch, Arch::Gemma3);
  EXPECT_EQ(c.sliding_window, 512);
  ASSERT_EQ(c.local_layers.size(), 18u);
  for (int64_t l = 0; l < 18; ++l) {
    EXPECT_EQ(is_local_layer(c, l), l % 6 != 5) << l;
    EXPECT_EQ(layer_rope_theta(c, l), l % 6 != 5 ? 10000.0f : 1e6f);
  }
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / 16.0f);
  EXPECT_FLOAT_EQ(embed_scale(c), std::sqrt(640.0f));
  const auto list = teacher_tensor_list(c);
  EXPECT_EQ(list.size(), 1 + 18 * 13 + 1u);  // tied; per layer 9 of Llama's, q/k norms, two post norms
  EXPECT_EQ(list[7].first, "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(list[8].first, "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(list[9].first, "model.layers.0.pre_feedforward_layernorm.weight");
  EXPECT_EQ(list[13].first, "model.layers.0.post_feedforward_layernorm.weight");
  nlohmann::json bad = j;
  bad["hidden_activation"] = "silu";
  EXPECT_NE(error_of(bad).find("hidden_activation \"silu\" is not supported for gemma3 (it uses gelu_pytorch_tanh)"),
            std::string::npos)
      << error_of(bad);
  bad = j;
  bad["final_logit_softcapping"] = 30.0;
  EXPECT_NE(error_of(bad).find("final_logit_softcapping is not supported"), std::string::npos);
  bad = j;
  bad["layer_types"] = {"sliding_attention", "full_attention"};
  EXPECT_NE(error_of(bad).find("'layer_types' should list 18 layers"), std::string::npos) << error_of(bad);
  bad["layer_types"] = std::vector<std::string>(18, "chunked_attention");
  EXPECT_NE(error_of(bad).find("layer type \"chunked_attention\" is not supported"), std::string::npos);
  bad = j;
  bad["query_pre_attn_scalar"] = 0;
  EXPECT_NE(error_of(bad).find("query_pre_attn_scalar 0 is not positive"), std::string::npos);
  bad = smollm2_like();
  bad["hidden_act"] = "gelu";
  EXPECT_NE(error_of(bad).find("hidden_act \"gelu\" is not supported for llama (it uses silu)"), std::string::npos);
}

TEST(HfConfig, Errors) {
  nlohmann::json j = smollm2_like();
  j["model_type"] = "gemma2";
  EXPECT_NE(error_of(j).find("unsupported architecture gemma2 (known: llama, qwen2, qwen3, mistral, gemma3)"), std::string::npos);
  j = smollm2_like();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of(j).find("yarn"), std::string::npos);
  j = smollm2_like();
  j["model_type"] = "qwen2";
  j["use_sliding_window"] = true;
  EXPECT_NE(error_of(j).find("use_sliding_window (sliding-window attention in some layers) is not supported"),
            std::string::npos);
  j = smollm2_like();
  j["model_type"] = "mistral";
  j["sliding_window"] = -2;
  EXPECT_NE(error_of(j).find("sliding_window -2 is negative"), std::string::npos);
  j = smollm2_like();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  EXPECT_NE(error_of(j).find("'rope_scaling' needs a positive number 'low_freq_factor'"), std::string::npos)
      << error_of(j);
  j["rope_scaling"]["low_freq_factor"] = 4.0;
  EXPECT_NE(error_of(j).find("high_freq_factor 4 above low_freq_factor 4"), std::string::npos) << error_of(j);
  j = smollm2_like();
  j["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(error_of(j), "");
  j = smollm2_like();
  j.erase("hidden_size");
  EXPECT_NE(error_of(j).find("hidden_size"), std::string::npos);
  j = smollm2_like();
  j["num_key_value_heads"] = 4;
  EXPECT_NE(error_of(j).find("not a multiple"), std::string::npos);
  j = smollm2_like();
  j["eos_token_id"] = "two";
  EXPECT_NE(error_of(j).find("eos_token_id"), std::string::npos);
  EXPECT_NE(error_of(j).find("/some/dir/config.json"), std::string::npos);

  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << "{\"model_type\": \"llama\",";
  try {
    load_hf_config(dir.file("config.json"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: not valid JSON"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace arwkv
