// Training throughput (SPEC §7): tokens/s of one align step and one kd step (forward_backward: the
// frozen teacher's forward included, the optimiser not) for B rows of T tokens, on a student
// converted from the given teacher (transfer init, in a temporary directory unless --student names
// one), on the CPU backend or, with --backend cuda, the GPU. --random-teacher qwen2.5-0.5b writes a
// teacher of Qwen2.5-0.5B's shapes with random weights instead (speed does not depend on them).
// Random tokens in documents of ~200 tokens. Reports the median over repetitions after one warm-up
// step, the teacher's forward alone for scale, and with --peak-tflops the model FLOP utilisation of
// the kd step: (2·P_teacher + 6·P_student + 4·L·C·T/2 of attention) FLOPs per token over the
// peak, with P the parameters that multiply each token (every weight but the embedding table).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "convert/convert.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "model/student/student_checkpoint.h"
#include "train/objectives.h"

namespace arwkv {
namespace {

struct Options {
  std::string teacher = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string student;
  std::vector<int64_t> batches = {1, 4}, seq_lens = {256, 512};
  int reps = 1;
  bool recompute = false;
  std::vector<std::string> kd_groups = {"time_mix", "mlp", "norm", "head"};
  std::string backend = "cpu", random_teacher;
  double peak_tflops = 0.0;
};

// A Qwen2 teacher with random weights (bf16 on disk) and its config.json, in dir.
void write_random_teacher(const std::string& shape, const std::string& dir) {
  struct Dims {
    int64_t C, F, L, H, Hkv, V;
  };
  Dims d;
  if (shape == "qwen2.5-0.5b") d = {896, 4864, 24, 14, 2, 151936};
  else if (shape == "tiny") d = {128, 256, 2, 2, 1, 512};
  else fail("--random-teacher: unknown shape '{}' (qwen2.5-0.5b, tiny)", shape);
  std::filesystem::create_directories(dir);
  const int64_t hd = d.C / d.H;
  std::FILE* f = std::fopen((dir + "/config.json").c_str(), "w");
  if (!f) fail("{}: cannot write config.json", dir);
  std::fprintf(f,
               "{\"model_type\": \"qwen2\", \"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": %lld, "
               "\"intermediate_size\": %lld, \"num_hidden_layers\": %lld, \"num_attention_heads\": %lld, "
               "\"num_key_value_heads\": %lld, \"vocab_size\": %lld, \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000.0, "
               "\"tie_word_embeddings\": true, \"max_position_embeddings\": 32768}\n",
               static_cast<long long>(d.C), static_cast<long long>(d.F), static_cast<long long>(d.L),
               static_cast<long long>(d.H), static_cast<long long>(d.Hkv), static_cast<long long>(d.V));
  std::fclose(f);
  std::mt19937_64 rng(7);
  SafetensorsWriter w;
  auto add = [&](const std::string& name, Shape s, float scale, float offset = 0.0f) {
    HostTensor t(s);
    std::normal_distribution<float> n(0.0f, scale);
    for (float& x : t.values) x = offset + n(rng);
    w.add(name, t, DType::BF16);
  };
  add("model.embed_tokens.weight", {d.V, d.C}, 0.02f);
  add("model.norm.weight", {d.C}, 0.02f, 1.0f);
  for (int64_t l = 0; l < d.L; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    add(p + "input_layernorm.weight", {d.C}, 0.02f, 1.0f);
    add(p + "post_attention_layernorm.weight", {d.C}, 0.02f, 1.0f);
    add(p + "self_attn.q_proj.weight", {d.H * hd, d.C}, 0.02f);
    add(p + "self_attn.k_proj.weight", {d.Hkv * hd, d.C}, 0.02f);
    add(p + "self_attn.v_proj.weight", {d.Hkv * hd, d.C}, 0.02f);
    add(p + "self_attn.q_proj.bias", {d.H * hd}, 0.02f);
    add(p + "self_attn.k_proj.bias", {d.Hkv * hd}, 0.02f);
    add(p + "self_attn.v_proj.bias", {d.Hkv * hd}, 0.02f);
    add(p + "self_attn.o_proj.weight", {d.C, d.H * hd}, 0.02f);
    add(p + "mlp.gate_proj.weight", {d.F, d.C}, 0.02f);
    add(p + "mlp.up_proj.weight", {d.F, d.C}, 0.02f);
    add(p + "mlp.down_proj.weight", {d.C, d.F}, 0.02f);
  }
  w.write(dir + "/model.safetensors");
}

// Parameters that multiply each token: every weight but the embedding table (a tied table counts
// once, as the head).
double token_params(const ModelConfig& c, bool student) {
  const double C = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
  const double attn = student ? 4.0 * C * C + 2.0 * C * (64 + 64 + 32 + 128)  // r k v o and the LoRAs (SPEC ranks)
                              : C * static_cast<double>(c.head_dim) * static_cast<double>(2 * c.n_heads + 2 * c.n_kv_heads);
  return static_cast<double>(c.n_layers) * (attn + 3.0 * C * F) + static_cast<double>(c.vocab_size) * C;
}

Batch random_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Batch b;
  b.B = B, b.T = T;
  int64_t doc = 0;
  for (int64_t i = 0; i < B * (T + 1); ++i) {
    if (rng() % 200 == 0) ++doc;
    b.tokens.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(V)));
    b.doc_ids.push_back(doc);
    b.mask.push_back(1);
  }
  return b;
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_seconds(int reps, const std::function<void()>& f) {
  f();  // warm-up: sizes the arenas
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds_of(f));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int run(const Options& o) {
  namespace fs = std::filesystem;
  std::string student = o.student, teacher_path = o.teacher;
  fs::path tmp, tmp_teacher;
  if (!o.random_teacher.empty()) {
    tmp_teacher = fs::temp_directory_path() / fmt::format("arwkv_bench_teacher_{}", std::random_device{}());
    write_random_teacher(o.random_teacher, tmp_teacher.string());
    teacher_path = tmp_teacher.string();
  }
  if (student.empty()) {
    tmp = fs::temp_directory_path() / fmt::format("arwkv_bench_train_{}", std::random_device{}());
    ConvertOptions c;
    c.teacher = teacher_path, c.out = tmp.string(), c.dtype = DType::F32;
    convert_teacher(c);
    student = tmp.string();
  }
  std::string device = o.backend;
  if (o.backend == "cuda" && !cuda_available(&device)) fail("--backend cuda: {}", device);
  auto ops = make_ops(o.backend);
  auto load_student = [&] { return std::make_unique<Student>(*StudentCheckpoint::open(student), *ops); };
  auto load_teacher = [&] { return std::make_unique<Teacher>(*Checkpoint::open(teacher_path), *ops); };
  AlignObjective align(load_student(), load_teacher(), o.recompute);
  KdObjective kd(load_student(), load_teacher(), o.kd_groups, KdOptions{.temperature = 2.0f}, o.recompute);
  auto teacher = load_teacher();
  const int64_t V = teacher->config().vocab_size;
  const ModelConfig& tc = teacher->config();
  fmt::print("{} on the {} backend ({}), {} activations; kd trains {}\n\n",
             o.random_teacher.empty() ? o.teacher : "random " + o.random_teacher, o.backend, device,
             o.recompute ? "recomputed" : "stored", fmt::join(o.kd_groups, ", "));
  fmt::print("| B | T | tokens | teacher forward tok/s | align step tok/s | kd step tok/s | kd TFLOP/s | kd MFU |\n"
             "|---|---|---|---|---|---|---|---|\n");
  for (int64_t B : o.batches)
    for (int64_t T : o.seq_lens) {
      const Batch batch = random_batch(B, T, V, static_cast<uint64_t>(B * 7919 + T));
      std::vector<int32_t> ids(batch.tokens.begin(), batch.tokens.begin() + T);
      const double tokens = static_cast<double>(B * T);
      const double t_teacher = B * median_seconds(o.reps, [&] { teacher->forward(ids); });
      const double t_align = median_seconds(o.reps, [&] { align.zero_grad(), align.forward_backward(batch); });
      const double t_kd = median_seconds(o.reps, [&] { kd.zero_grad(), kd.forward_backward(batch); });
      const double flops_per_token = 2.0 * token_params(tc, false) + 6.0 * token_params(tc, true) +
                                     4.0 * static_cast<double>(tc.n_layers * tc.n_heads * tc.head_dim) * T / 2.0;
      const double tflops = flops_per_token * tokens / t_kd / 1e12;
      fmt::print("| {} | {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.2f} | {} |\n", B, T, B * T, tokens / t_teacher,
                 tokens / t_align, tokens / t_kd, tflops,
                 o.peak_tflops > 0 ? fmt::format("{:.1f}%", 100.0 * tflops / o.peak_tflops) : "-");
      std::fflush(stdout);
    }
  if (!tmp.empty()) fs::remove_all(tmp);
  if (!tmp_teacher.empty()) fs::remove_all(tmp_teacher);
  return 0;
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options o;
  CLI::App app{"Training tokens/s of align and kd steps"};
  app.add_option("--backend", o.backend, "cpu, cuda or cuda-emulated")->capture_default_str();
  app.add_option("--random-teacher", o.random_teacher, "a teacher of these shapes with random weights: qwen2.5-0.5b, tiny");
  app.add_option("--peak-tflops", o.peak_tflops, "the device's peak (e.g. 989 for H100/H200 bf16 dense): prints MFU");
  app.add_option("--teacher", o.teacher, "teacher checkpoint (HF directory or GGUF)");
  app.add_option("--student", o.student, "student checkpoint directory (default: converted from the teacher)");
  app.add_option("--batch", o.batches, "rows per step")->delimiter(',');
  app.add_option("--seq-len", o.seq_lens, "tokens per row")->delimiter(',');
  app.add_option("--reps", o.reps, "timed repetitions per shape (after one warm-up)");
  app.add_flag("--recompute", o.recompute, "recompute activations in backward instead of keeping them");
  CLI11_PARSE(app, argc, argv);
  try {
    return arwkv::run(o);
  } catch (const arwkv::Error& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
