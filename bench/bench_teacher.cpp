// Speed of the teacher forward on the CPU backend, as tokens/s counters in Google Benchmark:
//   prefill/T:<T>     one whole-sequence extend of T random tokens into a fresh state
//   decode/ctx:<D>    n_gen one-token extends into a state already holding D tokens (the D-token
//                     prefill is not timed), as llama-bench's "tg<n_gen> @ d<D>" measures it
// bench/vs_llamacpp.sh runs this next to llama-bench on the same F32 weights.
//
// Our own flags come first and are removed before Google Benchmark reads the rest:
//   --model=PATH    checkpoint (default models/SmolLM2-135M-Instruct.F32.gguf)
//   --threads=N     threads of the CPU backend's one OpenMP pool (default: OMP_NUM_THREADS or all)
//   --n_gen=N       decode tokens per timed run (default 32)
//   --profile       instead of benchmarking, print a per-op time breakdown of each case
//   --f32           fp32 copies of the weights instead of the checkpoint's compact storage
#include <omp.h>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "model/teacher/teacher.h"
#include "timed_ops.h"

namespace arwkv {
namespace {

struct Options {
  std::string model = "models/SmolLM2-135M-Instruct.F32.gguf";
  int threads = 0;
  int n_gen = 32;
  bool profile = false;
  bool f32 = false;
};

const std::vector<int64_t> kPrefillLengths = {128, 1024};
const std::vector<int64_t> kDecodeContexts = {128, 1024};

// Takes our flags out of argv (shifting the rest down) and returns them.
Options take_own_flags(int& argc, char** argv) {
  Options opt;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) { return std::string(a.substr(flag.size())); };
    if (a.starts_with("--model=")) {
      opt.model = value("--model=");
    } else if (a.starts_with("--threads=")) {
      opt.threads = std::stoi(value("--threads="));
    } else if (a.starts_with("--n_gen=")) {
      opt.n_gen = std::stoi(value("--n_gen="));
    } else if (a == "--profile") {
      opt.profile = true;
    } else if (a == "--f32") {
      opt.f32 = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return opt;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = pick(rng);
  return ids;
}

// The model under test with the backend it runs on; the backend may be wrapped for profiling.
struct Subject {
  std::unique_ptr<Ops> cpu;
  std::unique_ptr<TimedOps> timed;
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<LanguageModel> model;
};

Subject load_subject(const Options& opt) {
  Subject s;
  s.cpu = make_cpu_ops();
  Ops* ops = s.cpu.get();
  if (opt.profile) {
    s.timed = std::make_unique<TimedOps>(*s.cpu);
    ops = s.timed.get();
  }
  s.checkpoint = Checkpoint::open(opt.model);
  s.model = std::make_unique<Teacher>(*s.checkpoint, *ops, TeacherOptions{.compact = !opt.f32});
  return s;
}

void bm_prefill(benchmark::State& st, const LanguageModel& model, int64_t T) {
  std::vector<int32_t> ids = random_ids(T, model.config().vocab_size, 1234);
  for (auto _ : st) {
    st.PauseTiming();
    auto state = model.new_state(T);
    st.ResumeTiming();
    benchmark::DoNotOptimize(model.extend(*state, ids));
  }
  st.counters["tokens_per_second"] =
      benchmark::Counter(static_cast<double>(st.iterations() * T), benchmark::Counter::kIsRate);
}

void bm_decode(benchmark::State& st, const LanguageModel& model, int64_t context, int n_gen) {
  int64_t vocab = model.config().vocab_size;
  std::vector<int32_t> prefix = random_ids(context, vocab, 4321);
  std::vector<int32_t> next = random_ids(n_gen, vocab, 987);
  for (auto _ : st) {
    st.PauseTiming();
    auto state = model.new_state(context + n_gen);
    model.extend(*state, prefix);
    st.ResumeTiming();
    for (int32_t id : next) benchmark::DoNotOptimize(model.extend(*state, std::span(&id, 1)));
  }
  st.counters["tokens_per_second"] = benchmark::Counter(
      static_cast<double>(st.iterations() * n_gen), benchmark::Counter::kIsRate);
}

void register_benchmarks(const LanguageModel& model, const Options& opt) {
  for (int64_t T : kPrefillLengths) {
    benchmark::RegisterBenchmark(fmt::format("prefill/T:{}", T).c_str(),
                                 [&model, T](benchmark::State& st) { bm_prefill(st, model, T); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  for (int64_t D : kDecodeContexts) {
    int n_gen = opt.n_gen;
    benchmark::RegisterBenchmark(fmt::format("decode/ctx:{}", D).c_str(), [&model, D, n_gen](benchmark::State& st) {
      bm_decode(st, model, D, n_gen);
    })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs each case once (after one warm-up) through TimedOps and prints where the time went.
void profile(const LanguageModel& model, TimedOps& timed, const Options& opt) {
  int64_t vocab = model.config().vocab_size;
  for (int64_t T : kPrefillLengths) {
    std::vector<int32_t> ids = random_ids(T, vocab, 1234);
    model.extend(*model.new_state(T), ids);
    auto state = model.new_state(T);
    timed.reset();
    double s = seconds_of([&] { model.extend(*state, ids); });
    fmt::print("prefill T={}: {:.1f} ms, {:.1f} tokens/s\n", T, s * 1e3, T / s);
    timed.print(stdout, s);
  }
  for (int64_t D : kDecodeContexts) {
    std::vector<int32_t> prefix = random_ids(D, vocab, 4321);
    std::vector<int32_t> next = random_ids(opt.n_gen, vocab, 987);
    auto state = model.new_state(D + opt.n_gen);
    model.extend(*state, prefix);
    timed.reset();
    double s = seconds_of([&] {
      for (int32_t id : next) model.extend(*state, std::span(&id, 1));
    });
    fmt::print("decode ctx={} ({} tokens): {:.1f} ms/token, {:.1f} tokens/s\n", D, opt.n_gen,
               s * 1e3 / opt.n_gen, opt.n_gen / s);
    timed.print(stdout, s);
  }
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options opt = arwkv::take_own_flags(argc, argv);
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  try {
    arwkv::Subject subject = arwkv::load_subject(opt);
    std::fprintf(stderr, "bench_teacher: %s, %d threads\n", opt.model.c_str(), omp_get_max_threads());
    if (opt.profile) {
      arwkv::profile(*subject.model, *subject.timed, opt);
      return 0;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    arwkv::register_benchmarks(*subject.model, opt);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const arwkv::Error& e) {
    std::fprintf(stderr, "bench_teacher: %s\n", e.what());
    return 1;
  }
  return 0;
}
