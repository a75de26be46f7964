// arwkv7 GGUF and HF export: every key with its value type, every tensor name and ne, the layout
// transforms checked element by element against the source checkpoint (lerp planes, transposed
// LoRA, flattened r_k, layer-0 dummies, output for a tied head), logits of the file read back
// against the Python oracle's dump and against the source student, and refusals that leave no file.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unistd.h>

#include "backend/ops.h"
#include "convert/convert.h"
#include "core/error.h"
#include "export/gguf_export.h"
#include "export/gguf_import.h"
#include "export/hf_export.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "test_util.h"

namespace arwkv {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() / fmt::format("arwkv_export_{}_{}", tag, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Removes every temp_dir of this process at the end.
class RemoveTempDirs : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::string suffix = fmt::format("_{}", ::getpid());
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
      if (const std::string n = e.path().filename().string(); n.starts_with("arwkv_export_") && n.ends_with(suffix))
        fs::remove_all(e.path());
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new RemoveTempDirs);

// A tokenizer of n tokens: three ChatML specials, then ASCII words.
TokenizerData small_tokenizer(int n) {
  TokenizerData d;
  d.source = "small tokenizer";
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    d.added_tokens.push_back({static_cast<int32_t>(d.tokens.size()), s, true, false, false});
    d.tokens.push_back(s);
    d.token_types.push_back(TokenType::Control);
  }
  while (static_cast<int>(d.tokens.size()) < n) {
    d.tokens.push_back(fmt::format("w{}", d.tokens.size()));
    d.token_types.push_back(TokenType::Normal);
  }
  d.merges = {{"w", "1"}, {"w1", "0"}};
  d.pre_regexes = pre_regexes_for("smollm");
  d.bos_id = 1, d.eos_id = 2;
  d.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
  return d;
}

std::vector<float> read_f32(const std::string& path, size_t n) {
  std::vector<float> v(n);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  EXPECT_TRUE(in.good()) << path;
  return v;
}

// A pure time-mix student with odd LoRA ranks, random values everywhere, a 419-row embedding and the
// committed 401-token tokenizer (so the GGUF needs [PAD] entries).
fs::path make_student(const std::string& tag, bool gate, bool group_norm, bool tied) {
  ModelConfig b;
  b.arch_name = "llama";
  b.name = "export test";
  b.vocab_size = 419, b.hidden_size = 128, b.intermediate_size = 80, b.n_layers = 3;
  b.n_heads = b.n_kv_heads = 2, b.head_dim = 64, b.max_position = 256, b.rms_eps = 1e-5f;
  b.tie_embeddings = tied, b.bos_token_id = 1, b.eos_token_ids = {2};
  StudentConfig c = make_student_config(b, 24, 16, 8, 40, gate);
  c.has_group_norm = group_norm;
  const fs::path dir = temp_dir(tag);
  uint64_t seed = 7;
  write_student_checkpoint(dir.string(), c, [&](const TensorSpec& s) {
    HostTensor t(s.shape);
    const bool mix = s.name.find(".x_") != std::string::npos;
    t.values = test::random_vector(static_cast<size_t>(s.shape.numel()), ++seed, mix ? 0.0f : -0.3f, mix ? 1.0f : 0.3f);
    return t;
  });
  fs::copy_file(test::data_path("tokenizer/tiny_tokenizer.json"), dir / "tokenizer.json");
  return dir;
}

// The GGUF read back through Arwkv7Gguf, written as a student directory and opened.
std::unique_ptr<StudentCheckpoint> read_back(const fs::path& gguf, const std::string& tag) {
  const fs::path dir = temp_dir(tag);
  fs::remove_all(dir);
  export_student_hf(gguf.string(), dir.string(), DType::F32, false);
  return StudentCheckpoint::open(dir.string());
}

std::vector<float> gguf_values(const GgufFile& f, const std::string& name) { return f.dequantize(f.tensor(name)).values; }

std::vector<int64_t> ne_of(const GgufFile& f, const std::string& name) {
  std::vector<int64_t> ne = f.tensor(name).ne;
  ne.resize(4, 1);
  return ne;
}

TEST(ExportGguf, KeysWithTheirTypes) {
  const fs::path dir = make_student("keys", true, false, true);
  const auto ck = StudentCheckpoint::open(dir.string());
  const fs::path out = dir / "s.gguf";
  export_student_gguf(*ck, load_tokenizer_json((dir / "tokenizer.json").string()), out.string(), GgmlType::F32);
  const auto f = GgufFile::open(out.string());
  auto expect_u32 = [&](const std::string& key, int64_t v) {
    ASSERT_TRUE(f->find(key)) << key;
    EXPECT_EQ(f->find(key)->type, GgufType::U32) << key;
    EXPECT_EQ(f->find(key)->int_value, v) << key;
  };
  EXPECT_EQ(f->find("general.architecture")->type, GgufType::String);
  EXPECT_EQ(f->get_string("general.architecture"), "arwkv7");
  expect_u32("general.file_type", 0);
  EXPECT_FALSE(f->has("general.quantization_version"));
  expect_u32("arwkv7.context_length", 1048576);
  expect_u32("arwkv7.embedding_length", 128);
  expect_u32("arwkv7.block_count", 3);
  expect_u32("arwkv7.feed_forward_length", 80);
  expect_u32("arwkv7.wkv.head_size", 64);
  expect_u32("arwkv7.attention.decay_lora_rank", 24);
  expect_u32("arwkv7.attention.iclr_lora_rank", 16);
  expect_u32("arwkv7.attention.value_residual_mix_lora_rank", 8);
  expect_u32("arwkv7.attention.gate_lora_rank", 40);
  expect_u32("arwkv7.token_shift_count", 1);
  expect_u32("arwkv7.attention.head_count", 0);
  EXPECT_EQ(f->find("arwkv7.attention.layer_norm_rms_epsilon")->type, GgufType::F32);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("arwkv7.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "smollm");
  const GgufValue* tokens = f->find("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens->elem_type, GgufType::String);
  ASSERT_EQ(tokens->strings.size(), 419u);
  EXPECT_EQ(tokens->strings[0], "<|endoftext|>");
  EXPECT_EQ(tokens->strings[400], "<tool>");
  EXPECT_EQ(tokens->strings[401], "[PAD401]");
  EXPECT_EQ(tokens->strings[418], "[PAD418]");
  const GgufValue* types = f->find("tokenizer.ggml.token_type");
  ASSERT_EQ(types->elem_type, GgufType::I32);
  ASSERT_EQ(types->ints.size(), 419u);
  EXPECT_EQ(types->ints[0], 3);    // CONTROL
  EXPECT_EQ(types->ints[50], 1);   // NORMAL
  EXPECT_EQ(types->ints[400], 4);  // USER_DEFINED
  EXPECT_EQ(types->ints[405], 5);  // UNUSED
  EXPECT_EQ(f->find("tokenizer.ggml.merges")->strings.size(), 141u);
  expect_u32("tokenizer.ggml.eos_token_id", 2);
  expect_u32("tokenizer.ggml.bos_token_id", 1);
  expect_u32("tokenizer.ggml.padding_token_id", 2);
  EXPECT_EQ(f->find("tokenizer.ggml.add_bos_token")->type, GgufType::Bool);
  EXPECT_FALSE(f->get_bool("tokenizer.ggml.add_bos_token"));
}

// Names and ne written out by hand from llama.cpp's arwkv7 loader (FORMATS.md §8.2).
std::map<std::string, std::vector<int64_t>> expected_tensors(bool gate, bool group_norm) {
  const int64_t C = 128, V = 419, F = 80;
  std::map<std::string, std::vector<int64_t>> m = {
      {"token_embd.weight", {C, V, 1, 1}}, {"output_norm.weight", {C, 1, 1, 1}}, {"output.weight", {C, V, 1, 1}}};
  for (int l = 0; l < 3; ++l) {
    auto add = [&](const std::string& n, std::vector<int64_t> ne) {
      ne.resize(4, 1);
      m[fmt::format("blk.{}.{}", l, n)] = ne;
    };
    add("attn_norm.weight", {C});
    add("time_mix_lerp_fused.weight", {C, 1, 1, gate ? 6 : 5});
    add("time_mix_w0.weight", {C}), add("time_mix_w1.weight", {C, 24}), add("time_mix_w2.weight", {24, C});
    add("time_mix_a0.weight", {C}), add("time_mix_a1.weight", {C, 16}), add("time_mix_a2.weight", {16, C});
    const int64_t dv = l == 0 ? 16 : 8;
    add("time_mix_v0.weight", {C}), add("time_mix_v1.weight", {C, dv}), add("time_mix_v2.weight", {dv, C});
    if (gate) add("time_mix_g1.weight", {C, 40}), add("time_mix_g2.weight", {40, C});
    add("time_mix_k_k.weight", {C}), add("time_mix_k_a.weight", {C}), add("time_mix_r_k.weight", {C});
    for (const char* n : {"receptance", "key", "value", "output"}) add(fmt::format("time_mix_{}.weight", n), {C, C});
    if (group_norm) add("time_mix_ln.weight", {C}), add("time_mix_ln.bias", {C});
    add("ffn_norm.weight", {C}), add("ffn_gate.weight", {C, F}), add("ffn_up.weight", {C, F}), add("ffn_down.weight", {F, C});
  }
  return m;
}

void check_tensors(bool gate, bool group_norm, bool tied) {
  const fs::path dir = make_student(fmt::format("t{}{}{}", gate, group_norm, tied), gate, group_norm, tied);
  const auto ck = StudentCheckpoint::open(dir.string());
  const fs::path out = dir / "s.gguf";
  export_student_gguf(*ck, load_tokenizer_json((dir / "tokenizer.json").string()), out.string(), GgmlType::F32);
  const auto f = GgufFile::open(out.string());
  const auto want = expected_tensors(gate, group_norm);
  std::set<std::string> seen;
  for (const GgufTensorInfo& t : f->tensors()) {
    ASSERT_TRUE(want.count(t.name)) << "unexpected " << t.name;
    EXPECT_EQ(ne_of(*f, t.name), want.at(t.name)) << t.name;
    EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    seen.insert(t.name);
  }
  EXPECT_EQ(seen.size(), want.size());
  EXPECT_EQ(f->tensor("blk.1.time_mix_lerp_fused.weight").ne.size(), 4u);  // interior 1s written out

  const int64_t C = 128;
  auto hf = [&](int l, const std::string& s) { return ck->load(time_mixer_name(l, s)).values; };
  for (int l = 0; l < 3; ++l) {
    const std::vector<float> lerp = gguf_values(*f, fmt::format("blk.{}.time_mix_lerp_fused.weight", l));
    const char* planes[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
    for (int p = 0; p < (gate ? 6 : 5); ++p)
      EXPECT_EQ(std::vector<float>(lerp.begin() + p * C, lerp.begin() + (p + 1) * C), hf(l, planes[p])) << planes[p];
    // HF w1 [C, D] used as x·w1; GGUF ne {C, D} = row-major [D, C] used as W·x.
    const char* src_v = l == 0 ? "a" : "v";
    for (auto [g, h, rank] : {std::tuple{"w", "w", 24}, {"a", "a", 16}, {"v", src_v, l == 0 ? 16 : 8}, {"g", "g", 40}}) {
      if (!gate && std::string(g) == "g") continue;
      const std::vector<float> one = gguf_values(*f, fmt::format("blk.{}.time_mix_{}1.weight", l, g));
      const std::vector<float> two = gguf_values(*f, fmt::format("blk.{}.time_mix_{}2.weight", l, g));
      const std::vector<float> h1 = hf(l, fmt::format("{}1", h)), h2 = hf(l, fmt::format("{}2", h));
      for (int64_t d = 0; d < rank; ++d)
        for (int64_t c = 0; c < C; c += 7) {
          ASSERT_EQ(one[d * C + c], h1[c * rank + d]) << l << g << "1";
          ASSERT_EQ(two[c * rank + d], h2[d * C + c]) << l << g << "2";
        }
      if (std::string(g) != "g") {
        EXPECT_EQ(gguf_values(*f, fmt::format("blk.{}.time_mix_{}0.weight", l, g)), hf(l, fmt::format("{}0", h)));
      }
    }
    EXPECT_EQ(gguf_values(*f, fmt::format("blk.{}.time_mix_r_k.weight", l)), hf(l, "r_k"));
    EXPECT_EQ(gguf_values(*f, fmt::format("blk.{}.time_mix_key.weight", l)), hf(l, "key.weight"));
    if (group_norm) {
      EXPECT_EQ(gguf_values(*f, fmt::format("blk.{}.time_mix_ln.bias", l)), hf(l, "ln_x.bias"));
    }
    EXPECT_EQ(gguf_values(*f, fmt::format("blk.{}.ffn_down.weight", l)),
              ck->load(fmt::format("model.layers.{}.mlp.down_proj.weight", l)).values);
  }
  EXPECT_EQ(gguf_values(*f, "output.weight"), ck->load(tied ? "model.embed_tokens.weight" : "lm_head.weight").values);
  EXPECT_EQ(gguf_values(*f, "token_embd.weight"), ck->load("model.embed_tokens.weight").values);
}

TEST(ExportGguf, TensorsGateTied) { check_tensors(true, false, true); }
TEST(ExportGguf, TensorsNoGateGroupNormUntied) { check_tensors(false, true, false); }

// The committed oracle student: its GGUF, read back, gives the Python oracle's logits.
void check_oracle_logits(GgmlType type, double tol) {
  const std::string src = test::data_path("student/gate_llama");
  const fs::path dir = temp_dir(fmt::format("oracle{}", static_cast<int>(type)));
  const auto ck = StudentCheckpoint::open(src);
  const fs::path out = dir / "s.gguf";
  export_student_gguf(*ck, small_tokenizer(150), out.string(), type);
  const auto back = read_back(out, fmt::format("oracle_back{}", static_cast<int>(type)));
  EXPECT_TRUE(back->config().base.tie_embeddings);
  const auto ops = make_cpu_ops();
  const Student s(*back, *ops);
  const std::vector<int32_t> ids = {1, 17, 150, 3, 99, 159, 0, 45, 45, 130, 7, 111, 64, 128, 9, 33, 100, 2};
  const std::vector<float> want = read_f32(src + "/logits_0.f32", ids.size() * 160);
  const double err = test::max_rel_error(s.logits(ids).values, want);
  EXPECT_LT(err, tol) << ggml_type_name(type);
  std::printf("%s: max relative logit error against the oracle %.3g\n", ggml_type_name(type), err);
}

TEST(ExportGguf, OracleLogitsF32) { check_oracle_logits(GgmlType::F32, 1e-4); }
TEST(ExportGguf, OracleLogitsF16) { check_oracle_logits(GgmlType::F16, 5e-3); }
TEST(ExportGguf, OracleLogitsQ8_0) { check_oracle_logits(GgmlType::Q8_0, 3e-2); }

// A GGUF read back equals the student it came from: same config, same logits (group norm, no gate,
// untied head, F16 fallback for Q8_0 rows of 80).
TEST(ExportGguf, ReadBackEqualsSource) {
  const fs::path dir = make_student("back", false, true, false);
  const auto ck = StudentCheckpoint::open(dir.string());
  const TokenizerData tok = load_tokenizer_json((dir / "tokenizer.json").string());
  const auto ops = make_cpu_ops();
  const std::vector<int32_t> ids = {5, 400, 17, 3, 250, 418, 2, 99, 99, 1, 300};
  const std::vector<float> want = Student(*ck, *ops).logits(ids).values;
  for (auto [type, tol] : {std::pair{GgmlType::F32, 1e-6}, {GgmlType::F16, 1e-2}, {GgmlType::Q8_0, 6e-2}}) {
    const fs::path out = dir / fmt::format("s{}.gguf", static_cast<int>(type));
    export_student_gguf(*ck, tok, out.string(), type);
    const auto g = Arwkv7Gguf::open(out.string());
    EXPECT_FALSE(g->config().has_gate);
    EXPECT_TRUE(g->config().has_group_norm);
    EXPECT_FALSE(g->config().base.tie_embeddings);
    EXPECT_EQ(g->config().value_lora, 8);
    EXPECT_EQ(g->tokenizer().tokens.size(), 419u);
    if (type == GgmlType::Q8_0) {
      EXPECT_EQ(g->file().tensor("blk.0.time_mix_key.weight").type, GgmlType::Q8_0);
      EXPECT_EQ(g->file().tensor("blk.0.ffn_down.weight").type, GgmlType::F16);  // rows of 80
      EXPECT_EQ(g->file().tensor("blk.0.time_mix_w1.weight").type, GgmlType::F32);
    }
    const auto back = read_back(out, fmt::format("back{}", static_cast<int>(type)));
    const double err = test::max_rel_error(Student(*back, *ops).logits(ids).values, want);
    EXPECT_LT(err, tol) << ggml_type_name(type);
    std::printf("%s: max relative logit error against the source student %.3g\n", ggml_type_name(type), err);
  }
}

TEST(ExportGguf, RefusesHybridAndLeavesNoFile) {
  const auto ck = StudentCheckpoint::open(test::data_path("student/hybrid_qwen2"));
  const fs::path out = temp_dir("hybrid") / "h.gguf";
  try {
    export_student_gguf(*ck, small_tokenizer(150), out.string(), GgmlType::F32);
    FAIL() << "a hybrid student was exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers 1 keep softmax attention"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

// A Gemma 3 student has norms after its time mixing and MLP, a GeGLU MLP and a scaled embedding,
// none of which llama.cpp's arwkv7 graph has: refused, naming them.
TEST(ExportGguf, RefusesAGemmaStudentWithTheReason) {
  const fs::path dir = temp_dir("gemma") / "student";
  ConvertOptions o;
  o.teacher = test::data_path("teacher/gemma3_tiny");
  o.out = dir.string();
  o.init = InitKind::Arwkv;
  o.lora_ranks = LoraRanks{8, 8, 8, 8};
  convert_teacher(o);
  const auto ck = StudentCheckpoint::open(dir.string());
  const fs::path out = temp_dir("gemma_out") / "g.gguf";
  try {
    export_student_gguf(*ck, small_tokenizer(300), out.string(), GgmlType::F32);
    FAIL() << "a Gemma student was exported to arwkv7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a student of a gemma3 teacher has norms after the time mixing and the MLP, "
                                         "a GELU MLP, an embedding scaled by sqrt(hidden size), which llama.cpp's "
                                         "arwkv7 cannot represent"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

TEST(ExportGguf, RefusesTooManyTokensAndLeavesNoFile) {
  const auto ck = StudentCheckpoint::open(test::data_path("student/gate_llama"));
  const fs::path out = temp_dir("tokens") / "t.gguf";
  EXPECT_THROW(export_student_gguf(*ck, small_tokenizer(161), out.string(), GgmlType::F32), Error);
  TokenizerData odd = small_tokenizer(150);
  odd.pre_regexes = {R"(\s+)"};
  EXPECT_THROW(export_student_gguf(*ck, odd, out.string(), GgmlType::F32), Error);
  EXPECT_FALSE(fs::exists(out));
}

TEST(ExportHf, TiedHeadWrittenForTheConverter) {
  const fs::path dir = make_student("hf", true, false, true);
  const fs::path out = temp_dir("hf_out") / "student";
  const HfExportReport r = export_student_hf(dir.string(), out.string(), DType::F32, false);
  EXPECT_TRUE(r.added_lm_head);
  EXPECT_NE(r.converter_warning.find("24/16/8/40"), std::string::npos) << r.converter_warning;
  const auto set = SafetensorsSet::open((out / "model.safetensors").string());
  ASSERT_TRUE(set->find("lm_head.weight"));
  EXPECT_EQ(set->load("lm_head.weight").values, set->load("model.embed_tokens.weight").values);
  EXPECT_TRUE(set->find("model.layers.2.self_attn.time_mixer.x_g"));
  std::ifstream cfg(out / "config.json"), tok(out / "tokenizer_config.json");
  const auto config = nlohmann::json::parse(cfg), tok_config = nlohmann::json::parse(tok);
  EXPECT_EQ(config["architectures"][0], "RwkvHybridForCausalLM");
  EXPECT_EQ(config["wkv_version"], 7);
  EXPECT_EQ(tok_config["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
  EXPECT_EQ(StudentCheckpoint::open(out.string())->config().decay_lora, 24);
  EXPECT_THROW(export_student_hf(dir.string(), out.string(), DType::F32, false), Error);  // not empty
  EXPECT_NO_THROW(export_student_hf(dir.string(), out.string(), DType::BF16, true));
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace arwkv
