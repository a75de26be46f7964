// arwkv convert on the real SmolLM2-135M-Instruct Q4_1 GGUF (skipped when absent): the bf16 student
// reloads, its receptance/key follow the teacher's dequantised q/k (GQA 9 query / 3 key-value
// heads) to bf16 precision, and the tokenizer.json written from the GGUF metadata gives the GGUF
// tokenizer's ids.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "convert/convert.h"
#include "formats/checkpoint.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher_tensors.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {
namespace {

namespace fs = std::filesystem;

// Largest |a - b| relative to max |b| over rows ra of a and rb of b.
double row_error(const HostTensor& a, int64_t ra, const HostTensor& b, int64_t rb) {
  const int64_t n = a.shape[1];
  return test::max_rel_error(a.values.data() + ra * n, b.values.data() + rb * n, static_cast<size_t>(n));
}

TEST(ConvertSmolLM2, Bf16StudentFromQ4_1Gguf) {
  const std::string gguf = test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  ARWKV_REQUIRE_FILE(gguf);
  const fs::path out = fs::temp_directory_path() / fmt::format("arwkv_convert_smollm2_{}", ::getpid());
  fs::remove_all(out);
  ConvertOptions o;
  o.teacher = gguf;
  o.out = out.string();
  o.dtype = DType::BF16;
  o.keep_attention = {7};
  const auto t0 = std::chrono::steady_clock::now();
  const ConvertReport report = convert_teacher(o);
  std::printf("converted in %.2f s: %lld tensors, %.1f M parameters\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              static_cast<long long>(report.n_tensors), report.n_parameters / 1e6);

  const auto teacher = Checkpoint::open(gguf);
  const auto student = StudentCheckpoint::open(out.string());
  const StudentConfig& c = student->config();
  EXPECT_EQ(c.base.hidden_size, 576);
  EXPECT_EQ(c.n_wkv_heads(), 9);
  EXPECT_EQ(c.wkv_layers.size(), 29u);
  EXPECT_EQ(c.decay_lora, 32);  // 1.8·√576 = 43.2 → 32
  EXPECT_EQ(c.gate_lora, 96);   // 0.6·576^0.8 = 97.4 → 96
  EXPECT_TRUE(c.base.tie_embeddings);
  EXPECT_FALSE(student->has("lm_head.weight"));
  EXPECT_TRUE(student->has(layer_tensor_name(7, "self_attn.q_proj.weight")));

  const int64_t layer = 12, hd = 64, group = 3;
  const HostTensor q = teacher->load(layer_tensor_name(layer, "self_attn.q_proj.weight"));
  const HostTensor k = teacher->load(layer_tensor_name(layer, "self_attn.k_proj.weight"));
  const HostTensor r = student->load(time_mixer_name(layer, "receptance.weight"));
  const HostTensor key = student->load(time_mixer_name(layer, "key.weight"));
  for (int64_t row : {0, 63, 64, 200, 575}) {
    EXPECT_LT(row_error(r, row, q, row), 1.0 / 128) << row;
    EXPECT_LT(row_error(key, row, k, (row / hd / group) * hd + row % hd), 1.0 / 128) << row;
  }

  const Tokenizer written(load_tokenizer_json((out / "tokenizer.json").string()));
  const auto original = load_tokenizer(*teacher);
  for (const char* text : {"<|im_start|>user\nWhat is 2+2?<|im_end|>\n", "Ünïcödé naïve café 日本語 😀", "  x\n\n\ty"})
    EXPECT_EQ(written.encode(text), original->encode(text)) << text;
  EXPECT_EQ(written.data().chat_template, original->data().chat_template);
  fs::remove_all(out);
}

}  // namespace
}  // namespace arwkv
