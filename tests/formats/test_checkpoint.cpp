// Checkpoint::open over HF directories (single and sharded safetensors), single .safetensors files
// and GGUF files (names mapped to HF, llama q/k rows un-permuted), the errors for unexpected,
// missing and mis-shaped tensors, and the real SmolLM2 GGUF against gguf-py's reading of it.
#include <chrono>
#include <filesystem>
#include <map>

#include "format_test_util.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_gguf.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace arwkv {
namespace {

ModelConfig tiny_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.arch_name = arch == Arch::Llama ? "llama" : "qwen2";
  c.vocab_size = 50;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.attention_bias = arch == Arch::Qwen2;
  c.tie_embeddings = arch == Arch::Qwen2;
  return c;
}

void write_config_json(const std::string& dir, const ModelConfig& c, bool tie) {
  std::ofstream(dir + "/config.json") << nlohmann::json{
      {"model_type", c.arch_name},      {"vocab_size", c.vocab_size},      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads}, {"num_key_value_heads", c.n_kv_heads},
      {"tie_word_embeddings", tie}, {"eos_token_id", 3}}.dump();
}

// Random HF tensors for a config, seeded per tensor.
std::map<std::string, HostTensor> random_weights(const ModelConfig& c) {
  std::map<std::string, HostTensor> w;
  uint64_t seed = 1;
  for (const auto& [name, shape] : teacher_tensor_list(c)) {
    HostTensor t(shape);
    t.values = test::random_vector(static_cast<size_t>(shape.numel()), seed++);
    w.emplace(name, std::move(t));
  }
  return w;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, SafetensorsDirectorySingleAndSharded) {
  test::TempDir dir;
  const ModelConfig c = tiny_config(Arch::Llama);
  const auto w = random_weights(c);
  const std::string d = dir.path().string();
  write_config_json(d, c, false);
  std::ofstream(d + "/tokenizer.json") << "{}";
  SafetensorsWriter all;
  for (const auto& [name, t] : w) all.add(name, t, DType::F32);
  all.write(d + "/model.safetensors");

  auto ck = Checkpoint::open(d);
  EXPECT_EQ(ck->format(), "safetensors");
  EXPECT_EQ(ck->config().n_kv_heads, 2);
  EXPECT_EQ(ck->tensors().size(), w.size());
  EXPECT_EQ(ck->tokenizer_json_path(), d + "/tokenizer.json");
  for (const auto& [name, t] : w) EXPECT_EQ(ck->load(name).values, t.values) << name;
  EXPECT_EQ(ck->load("lm_head.weight").shape, (Shape{50, 64}));

  // The same file named directly.
  EXPECT_EQ(Checkpoint::open(d + "/model.safetensors")->tensors().size(), w.size());

  // Sharded (BF16), which takes precedence over model.safetensors.
  SafetensorsWriter s1, s2;
  std::map<std::string, std::string> map;
  int i = 0;
  for (const auto& [name, t] : w) {
    const bool first = i++ % 2 == 0;
    (first ? s1 : s2).add(name, t, DType::BF16);
    map[name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  s1.write(d + "/model-00001-of-00002.safetensors");
  s2.write(d + "/model-00002-of-00002.safetensors");
  write_safetensors_index(d + "/model.safetensors.index.json", map, 0);
  ck = Checkpoint::open(d);
  EXPECT_EQ(ck->tensors()[0].file_dtype, "BF16");
  const HostTensor q = ck->load("model.layers.1.self_attn.q_proj.weight");
  const HostTensor& ref = w.at("model.layers.1.self_attn.q_proj.weight");
  EXPECT_LT(test::max_rel_error(q.values, ref.values), 1e-2);
}

TEST(Checkpoint, SafetensorsTensorSetErrors) {
  test::TempDir dir;
  const ModelConfig c = tiny_config(Arch::Llama);
  const std::string d = dir.path().string();
  write_config_json(d, c, false);
  const auto write_with = [&](const std::function<void(std::map<std::string, HostTensor>&)>& edit) {
    auto w = random_weights(c);
    edit(w);
    SafetensorsWriter sw;
    for (const auto& [name, t] : w) sw.add(name, t);
    sw.write(d + "/model.safetensors");
    return error_of([&] { Checkpoint::open(d); });
  };
  std::string msg = write_with([](auto& w) { w.erase("model.layers.1.mlp.up_proj.weight"); });
  EXPECT_NE(msg.find("missing tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  msg = write_with([](auto& w) { w.emplace("model.layers.2.mlp.up_proj.weight", HostTensor(Shape{2})); });
  EXPECT_NE(msg.find("unexpected tensor 'model.layers.2.mlp.up_proj.weight'"), std::string::npos) << msg;
  msg = write_with([](auto& w) { w["model.norm.weight"] = HostTensor(Shape{63}); });
  EXPECT_NE(msg.find("'model.norm.weight' has shape [63], expected [64]"), std::string::npos) << msg;
  msg = write_with([](auto& w) { w.emplace("model.layers.0.self_attn.rotary_emb.inv_freq", HostTensor(Shape{8})); });
  EXPECT_EQ(msg, "");

  EXPECT_NE(error_of([&] { Checkpoint::open(d + "/nothing_here"); }).find("nothing_here"), std::string::npos);
  std::filesystem::remove(d + "/config.json");
  EXPECT_NE(error_of([&] { Checkpoint::open(d); }).find("no config.json"), std::string::npos);
}

// llama.cpp's converter order (FORMATS.md §3.4): rows of each head viewed as (2, d/2), transposed
// to (d/2, 2) — so GGUF row h·d + 2i + j holds HF row h·d + j·d/2 + i.
HostTensor llama_cpp_permute(const HostTensor& hf, int64_t heads) {
  HostTensor out(hf.shape);
  const int64_t rows = hf.shape[0], cols = hf.shape.numel() / rows, d = rows / heads;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < d / 2; ++i)
        std::copy_n(hf.values.begin() + (h * d + j * (d / 2) + i) * cols, cols,
                    out.values.begin() + (h * d + 2 * i + j) * cols);
  return out;
}

std::string gguf_name(const std::string& hf, const ModelConfig& c) {
  for (int64_t l = -1; l < c.n_layers; ++l)
    for (const char* part : {"token_embd", "output_norm", "output", "attn_norm", "attn_q", "attn_k", "attn_v",
                             "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"})
      for (const char* kind : {".weight", ".bias"}) {
        const std::string g = (l < 0 ? std::string() : "blk." + std::to_string(l) + ".") + part + kind;
        if (hf_name_from_gguf(g) == hf) return g;
      }
  return "";
}

void write_gguf(const std::string& path, const ModelConfig& c, const std::map<std::string, HostTensor>& w,
                const std::string& arch, const std::function<void(GgufWriter&)>& extra = {}) {
  GgufWriter g;
  g.set("general.architecture", GgufValue::string(arch));
  g.set(arch + ".block_count", GgufValue::u32(static_cast<uint32_t>(c.n_layers)));
  g.set(arch + ".embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  g.set(arch + ".feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  g.set(arch + ".attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.n_heads)));
  g.set(arch + ".attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.n_kv_heads)));
  g.set(arch + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  g.set(arch + ".rope.freq_base", GgufValue::f32(500000.0f));
  g.set(arch + ".context_length", GgufValue::u32(4096));
  g.set("tokenizer.ggml.eos_token_id", GgufValue::u32(7));
  for (const auto& [hf, t] : w) {
    const bool permute = arch == "llama" && (hf.find("q_proj") != std::string::npos || hf.find("k_proj") != std::string::npos);
    const int64_t heads = hf.find("q_proj") != std::string::npos ? c.n_heads : c.n_kv_heads;
    const HostTensor stored = permute ? llama_cpp_permute(t, heads) : t;
    g.add_tensor(gguf_name(hf, c), stored, t.shape.ndim == 2 && hf.find("embed") == std::string::npos ? GgmlType::F16 : GgmlType::F32);
  }
  if (extra) extra(g);
  g.write(path);
}

TEST(Checkpoint, GgufLlamaUndoesQkPermutation) {
  test::TempDir dir;
  const ModelConfig c = tiny_config(Arch::Llama);
  const auto w = random_weights(c);
  const std::string path = dir.file("tiny.gguf");
  write_gguf(path, c, w, "llama");
  auto ck = Checkpoint::open(path);
  EXPECT_EQ(ck->format(), "gguf");
  ASSERT_NE(ck->gguf(), nullptr);
  const ModelConfig& got = ck->config();
  EXPECT_EQ(got.n_layers, 2);
  EXPECT_EQ(got.vocab_size, 50);
  EXPECT_EQ(got.head_dim, 16);
  EXPECT_FALSE(got.tie_embeddings);
  EXPECT_FLOAT_EQ(got.rope_theta, 500000.0f);
  EXPECT_EQ(got.eos_token_ids, std::vector<int32_t>{7});
  EXPECT_EQ(ck->tensors().size(), w.size());
  for (const auto& [name, t] : w) {
    ASSERT_TRUE(ck->has(name)) << name;
    const HostTensor l = ck->load(name);
    EXPECT_EQ(l.shape, t.shape) << name;
    EXPECT_LT(test::max_rel_error(l.values, t.values), 1e-3) << name;  // F16 storage
  }
}

TEST(Checkpoint, GgufQwen2KeepsOrderAndHasBiases) {
  test::TempDir dir;
  const ModelConfig c = tiny_config(Arch::Qwen2);
  const auto w = random_weights(c);
  const std::string path = dir.file("tiny.gguf");
  write_gguf(path, c, w, "qwen2");
  auto ck = Checkpoint::open(path);
  EXPECT_TRUE(ck->config().tie_embeddings);
  EXPECT_TRUE(ck->config().attention_bias);
  EXPECT_FALSE(ck->has("lm_head.weight"));
  for (const auto& [name, t] : w) EXPECT_LT(test::max_rel_error(ck->load(name).values, t.values), 1e-3) << name;
  EXPECT_EQ(ck->load("model.layers.1.self_attn.k_proj.bias").values, w.at("model.layers.1.self_attn.k_proj.bias").values);
}

TEST(Checkpoint, GgufErrors) {
  test::TempDir dir;
  const ModelConfig c = tiny_config(Arch::Llama);
  const std::string path = dir.file("bad.gguf");
  auto w = random_weights(c);
  write_gguf(path, c, w, "gemma2");
  std::string msg = error_of([&] { Checkpoint::open(path); });
  EXPECT_NE(msg.find("bad.gguf: unsupported architecture gemma2"), std::string::npos) << msg;

  write_gguf(path, c, w, "llama", [](GgufWriter& g) {
    const std::vector<float> x(8, 1.0f);
    g.add_tensor("blk.0.attn_rot_embd", x.data(), Shape{8}, GgmlType::F32);
  });
  msg = error_of([&] { Checkpoint::open(path); });
  EXPECT_NE(msg.find("bad.gguf: unexpected tensor 'blk.0.attn_rot_embd'"), std::string::npos) << msg;

  auto missing = w;
  missing.erase("model.layers.1.mlp.down_proj.weight");
  write_gguf(path, c, missing, "llama");
  msg = error_of([&] { Checkpoint::open(path); });
  EXPECT_NE(msg.find("missing tensor 'blk.1.ffn_down.weight'"), std::string::npos) << msg;

  auto reshaped = w;
  reshaped["model.layers.0.mlp.up_proj.weight"] = HostTensor(Shape{96, 32});
  write_gguf(path, c, reshaped, "llama");
  msg = error_of([&] { Checkpoint::open(path); });
  EXPECT_NE(msg.find("'blk.0.ffn_up.weight' has shape [96, 32], expected [96, 64]"), std::string::npos) << msg;
}

// The real default teacher against gguf-py's reading of it (tests/data/formats/smollm2_reference.*).
TEST(Checkpoint, RealSmolLM2Gguf) {
  const nlohmann::json ref = test::read_json(test::data_path("formats/smollm2_reference.json"));
  const std::string model = test::model_path(ref["model"].get<std::string>());
  ARWKV_REQUIRE_FILE(model);
  const std::vector<float> floats = test::read_f32(test::data_path("formats/smollm2_reference.f32"));
  const auto t0 = std::chrono::steady_clock::now();
  auto ck = Checkpoint::open(model);
  const ModelConfig& c = ck->config();
  const nlohmann::json& rc = ref["config"];
  EXPECT_EQ(c.arch_name, rc["arch"]);
  EXPECT_EQ(c.n_layers, rc["n_layers"]);
  EXPECT_EQ(c.hidden_size, rc["hidden_size"]);
  EXPECT_EQ(c.intermediate_size, rc["intermediate_size"]);
  EXPECT_EQ(c.n_heads, rc["n_heads"]);
  EXPECT_EQ(c.n_kv_heads, rc["n_kv_heads"]);
  EXPECT_EQ(c.head_dim, rc["head_dim"]);
  EXPECT_EQ(c.vocab_size, rc["vocab_size"]);
  EXPECT_EQ(c.max_position, rc["max_position"]);
  EXPECT_EQ(c.tie_embeddings, rc["tie_embeddings"]);
  EXPECT_FLOAT_EQ(c.rms_eps, rc["rms_eps"].get<float>());
  EXPECT_FLOAT_EQ(c.rope_theta, rc["rope_theta"].get<float>());
  EXPECT_EQ(c.bos_token_id, rc["bos_token_id"]);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{rc["eos_token_id"].get<int32_t>()});
  EXPECT_EQ(ck->gguf()->string_array("tokenizer.ggml.tokens").size(), rc["n_tokens"]);
  EXPECT_EQ(ck->tensors().size(), ref["n_tensors"]);

  const GgufFile& g = *ck->gguf();
  for (const auto& t : ref["tensors"]) {
    const std::string name = t["name"];
    SCOPED_TRACE(name);
    const GgufTensorInfo& info = g.tensor(name);
    EXPECT_STREQ(ggml_type_name(info.type), t["type"].get<std::string>().c_str());
    const HostTensor full = g.dequantize(info);
    double sum = 0, sum_sq = 0;
    for (float v : full.values) {
      sum += v;
      sum_sq += double(v) * v;
    }
    EXPECT_NEAR(sum, t["sum"].get<double>(), 1e-9 * sum_sq + 1e-6);
    EXPECT_NEAR(sum_sq, t["sum_sq"].get<double>(), 1e-9 * sum_sq);
    const int64_t cols = info.row_size();
    size_t at = t["offset"];
    for (int64_t row : t["rows"].get<std::vector<int64_t>>())
      for (int64_t k = 0; k < cols; ++k, ++at) ASSERT_EQ(full.values[row * cols + k], floats[at]) << row << "," << k;
  }
  for (const auto& h : ref["hf_rows"]) {
    const std::string hf = hf_name_from_gguf(h["gguf_name"]);
    SCOPED_TRACE(hf);
    const HostTensor t = ck->load(hf);
    const int64_t cols = t.shape[1];
    size_t at = h["offset"];
    for (int64_t row : h["rows"].get<std::vector<int64_t>>())
      for (int64_t k = 0; k < cols; ++k, ++at) ASSERT_EQ(t.values[row * cols + k], floats[at]) << row << "," << k;
  }
  size_t total = 0;
  for (const TensorInfo& info : ck->tensors()) total += ck->load(info.name).values.size();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("opened and dequantised %zu tensors (%zu values) in %.2f s\n", ck->tensors().size(), total, secs);
}

}  // namespace
}  // namespace arwkv
