// Training throughput on the CPU backend (SPEC §7): tokens/s of one align step and one kd step
// (forward_backward: the frozen teacher's forward included, the optimiser not) for B rows of T
// tokens, on a student converted from the given teacher (transfer init, in a temporary directory
// unless --student names one). Random tokens in documents of ~200 tokens. Reports the median over
// repetitions after one warm-up step, and the teacher's forward alone for scale.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "convert/convert.h"
#include "formats/checkpoint.h"
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
};

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
  std::string student = o.student;
  fs::path tmp;
  if (student.empty()) {
    tmp = fs::temp_directory_path() / fmt::format("arwkv_bench_train_{}", std::random_device{}());
    ConvertOptions c;
    c.teacher = o.teacher, c.out = tmp.string(), c.dtype = DType::F32;
    convert_teacher(c);
    student = tmp.string();
  }
  auto ops = make_cpu_ops();
  auto load_student = [&] { return std::make_unique<Student>(*StudentCheckpoint::open(student), *ops); };
  auto load_teacher = [&] { return std::make_unique<Teacher>(*Checkpoint::open(o.teacher), *ops); };
  AlignObjective align(load_student(), load_teacher(), o.recompute);
  KdObjective kd(load_student(), load_teacher(), o.kd_groups, KdOptions{.temperature = 2.0f}, o.recompute);
  auto teacher = load_teacher();
  const int64_t V = teacher->config().vocab_size;
  fmt::print("{} on the CPU backend, {} activations; kd trains {}\n\n", o.teacher, o.recompute ? "recomputed" : "stored",
             fmt::join(o.kd_groups, ", "));
  fmt::print("| B | T | tokens | teacher forward tok/s | align step tok/s | kd step tok/s |\n|---|---|---|---|---|---|\n");
  for (int64_t B : o.batches)
    for (int64_t T : o.seq_lens) {
      const Batch batch = random_batch(B, T, V, static_cast<uint64_t>(B * 7919 + T));
      std::vector<int32_t> ids(batch.tokens.begin(), batch.tokens.begin() + T);
      const double tokens = static_cast<double>(B * T);
      const double t_teacher = B * median_seconds(o.reps, [&] { teacher->forward(ids); });
      const double t_align = median_seconds(o.reps, [&] { align.zero_grad(), align.forward_backward(batch); });
      const double t_kd = median_seconds(o.reps, [&] { kd.zero_grad(), kd.forward_backward(batch); });
      fmt::print("| {} | {} | {} | {:.0f} | {:.0f} | {:.0f} |\n", B, T, B * T, tokens / t_teacher, tokens / t_align,
                 tokens / t_kd);
      std::fflush(stdout);
    }
  if (!tmp.empty()) fs::remove_all(tmp);
  return 0;
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options o;
  CLI::App app{"Training tokens/s of align and kd steps on the CPU backend"};
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
