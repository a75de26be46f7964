// Student vs teacher speed on the CPU backend, both measured in this one process and interleaved
// repetition by repetition, so that both see the same machine load; prints Markdown tables of
// tokens/s with the ratio student / teacher (SPEC §7).
//   decode @ D   n_gen one-token extends into a state already holding D tokens
//   prefill T    one whole-sequence extend of T random tokens into a fresh state
// How the states come to hold D tokens (the output says it again):
//   - student: a real prefill of random tokens (the model's own chunking), continued from one
//     context to the next (0 → 128 → 1K → ...); every repetition decodes from a copy of it;
//   - teacher: a real prefill up to --teacher-prefill-max tokens; beyond that, a KV cache of D
//     tokens written with seeded random values through ModelState::set_n_tokens()/tensors():
//     decode time depends on how many keys are attended, not on their values, while a real prefill
//     of 16K tokens is quadratic (many minutes on two cores). Each repetition rewinds the cache to D.
// Timed: the extends only. Reported: the median over repetitions (and the best).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/error.h"
#include "infer/loaded_model.h"

namespace arwkv {
namespace {

struct Options {
  std::string teacher = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string student;
  std::vector<int64_t> contexts = {128, 1024, 4096, 16384};
  std::vector<int64_t> prefill = {128, 1024};
  int64_t teacher_prefill_max = 1024;
  int n_gen = 16;
  int reps = 5;
  int threads = 0;
};

// tokens/s of each repetition, teacher and student side by side.
struct Samples {
  std::vector<double> teacher, student;
};

struct DecodeRow {
  int64_t context = 0;
  bool teacher_prefilled = false;
  size_t teacher_state = 0, student_state = 0;  // bytes held for the context (state tensors)
  Samples tps;
};

struct PrefillRow {
  int64_t tokens = 0;
  Samples tps;
};

struct StudentFill {
  int64_t tokens = 0;
  double seconds = 0.0;
};

using Ids = std::span<const int32_t>;

double decode_tps(const LanguageModel& m, ModelState& s, Ids next) {
  const double sec = bench::seconds_of([&] {
    for (const int32_t& id : next) m.extend(s, Ids(&id, 1));
  });
  return static_cast<double>(next.size()) / sec;
}

double prefill_tps(const LanguageModel& m, Ids ids) {
  auto state = m.new_state(static_cast<int64_t>(ids.size()));
  return static_cast<double>(ids.size()) / bench::seconds_of([&] { m.extend(*state, ids); });
}

// A few tokens through each model first, so that the first timed case does not pay for cold pages.
void warm_up(const LanguageModel& teacher, const LanguageModel& student, Ids ids) {
  for (const LanguageModel* m : {&teacher, &student}) {
    auto s = m->new_state(static_cast<int64_t>(ids.size()) + 4);
    m->extend(*s, ids);
    for (int i = 0; i < 4; ++i) m->extend(*s, ids.first(1));
  }
}

// The student states bench_decode() works on: the student's, prefilled context to context, and a copy
// of it that each repetition decodes from.
struct StudentStates {
  std::unique_ptr<ModelState> running, decoding;
};

// One decode row at context D: the teacher's cache of D tokens, prefilled (ids) or written with
// random values, then repetitions of n_gen tokens, teacher and student in turn.
DecodeRow decode_row(const LanguageModel& teacher, const LanguageModel& student, StudentStates& s, Ids prefix,
                     Ids next, bool prefill_teacher, int reps) {
  DecodeRow row;
  row.context = static_cast<int64_t>(prefix.size());
  row.teacher_prefilled = prefill_teacher;
  auto cache = teacher.new_state(row.context + static_cast<int64_t>(next.size()));
  if (prefill_teacher) {
    teacher.extend(*cache, prefix);
  } else {
    bench::write_random_state(teacher.ops(), *cache, row.context, 77);
  }
  row.teacher_state = bench::state_tensor_bytes(*cache);
  row.student_state = bench::state_tensor_bytes(*s.running);
  for (int r = 0; r < reps; ++r) {
    cache->set_n_tokens(row.context);
    row.tps.teacher.push_back(decode_tps(teacher, *cache, next));
    bench::copy_state(student.ops(), *s.decoding, *s.running);
    row.tps.student.push_back(decode_tps(student, *s.decoding, next));
  }
  return row;
}

// Rows by context; the largest context the teacher prefills is measured again with a written cache,
// to show that the values in the cache do not change the decode time.
std::vector<DecodeRow> bench_decode(const LanguageModel& teacher, const LanguageModel& student, const Options& opt,
                                    StudentFill& fill) {
  std::vector<int64_t> contexts = opt.contexts;
  std::erase_if(contexts, [](int64_t D) { return D <= 0; });
  std::sort(contexts.begin(), contexts.end());
  if (contexts.empty()) return {};
  const int64_t vocab = teacher.config().vocab_size;
  const std::vector<int32_t> prefix = bench::random_ids(contexts.back(), vocab, 4321);
  const std::vector<int32_t> next = bench::random_ids(opt.n_gen, vocab, 987);
  StudentStates s{student.new_state(contexts.back()), student.new_state(contexts.back() + opt.n_gen)};
  int64_t check_at = 0;
  for (int64_t D : contexts)
    if (D <= opt.teacher_prefill_max) check_at = D;
  std::vector<DecodeRow> rows;
  for (int64_t D : contexts) {
    Ids more = Ids(prefix).subspan(static_cast<size_t>(fill.tokens), static_cast<size_t>(D - fill.tokens));
    fill.seconds += bench::seconds_of([&] { student.extend(*s.running, more); });
    fill.tokens = D;
    Ids held = Ids(prefix).first(static_cast<size_t>(D));
    rows.push_back(decode_row(teacher, student, s, held, next, D <= opt.teacher_prefill_max, opt.reps));
    if (D == check_at) rows.push_back(decode_row(teacher, student, s, held, next, false, opt.reps));
    std::fprintf(stderr, "bench_student: decode @ %lld done (load %s)\n", static_cast<long long>(D),
                 bench::load_average().c_str());
  }
  return rows;
}

std::vector<PrefillRow> bench_prefill(const LanguageModel& teacher, const LanguageModel& student,
                                      const Options& opt) {
  std::vector<PrefillRow> rows;
  for (int64_t T : opt.prefill) {
    if (T <= 0) continue;
    const std::vector<int32_t> ids = bench::random_ids(T, teacher.config().vocab_size, 1234);
    PrefillRow row;
    row.tokens = T;
    for (int r = 0; r < opt.reps; ++r) {
      row.tps.teacher.push_back(prefill_tps(teacher, ids));
      row.tps.student.push_back(prefill_tps(student, ids));
    }
    std::fprintf(stderr, "bench_student: prefill %lld done\n", static_cast<long long>(T));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string mib(size_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

std::string rate(const std::vector<double>& v) {
  return fmt::format("{:.1f} ({:.1f})", bench::median(v), *std::max_element(v.begin(), v.end()));
}

// student / teacher of the medians (and of the bests).
std::string ratio(const Samples& s) {
  return fmt::format("{:.2f} ({:.2f})", bench::median(s.student) / bench::median(s.teacher),
                     *std::max_element(s.student.begin(), s.student.end()) /
                         *std::max_element(s.teacher.begin(), s.teacher.end()));
}

void print_decode(const std::vector<DecodeRow>& rows, const Options& opt) {
  fmt::print("\n### Decode: {} tokens after a context of D tokens, tokens/s median (best of {})\n\n", opt.n_gen,
             opt.reps);
  fmt::print("| context D | teacher cache filled by | teacher tok/s | student tok/s | student / teacher | "
             "teacher KV cache | student state |\n");
  fmt::print("|---:|---|---:|---:|---:|---:|---:|\n");
  for (const DecodeRow& r : rows) {
    fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", r.context,
               r.teacher_prefilled ? "prefill" : "random values", rate(r.tps.teacher), rate(r.tps.student),
               ratio(r.tps), mib(r.teacher_state), mib(r.student_state));
  }
}

void print_prefill(const std::vector<PrefillRow>& rows, const Options& opt) {
  if (rows.empty()) return;
  fmt::print("\n### Prefill: T tokens into a fresh state, tokens/s median (best of {})\n\n", opt.reps);
  fmt::print("| tokens T | teacher tok/s | student tok/s | student / teacher |\n");
  fmt::print("|---:|---:|---:|---:|\n");
  for (const PrefillRow& r : rows)
    fmt::print("| {} | {} | {} | {} |\n", r.tokens, rate(r.tps.teacher), rate(r.tps.student), ratio(r.tps));
}

void print_notes(const Options& opt, const StudentFill& fill, const std::string& load_before) {
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  fmt::print("\nteacher {}; student {}; CPU backend, {} threads, OMP_WAIT_POLICY={}.\n", opt.teacher, opt.student,
             omp_get_max_threads(), wait ? wait : "(unset)");
  fmt::print("Student states: a real prefill of {} random tokens, continued context to context ({:.1f} tokens/s "
             "overall); each repetition decodes from a copy.\n",
             fill.tokens, static_cast<double>(fill.tokens) / fill.seconds);
  fmt::print("Teacher KV caches: a real prefill up to {} tokens; beyond, {} rows written with seeded random values "
             "through the state tensors (decode time does not depend on them); rewound to D each repetition.\n",
             opt.teacher_prefill_max, "D");
  fmt::print("State sizes: the bytes of the state tensors at D (teacher: K and V rows of every layer; student: "
             "S [L,H,N,N] and x_prev [L,C] in fp32), without workspace.\n");
  fmt::print("Load average before: {}, after: {}.\n", load_before, bench::load_average());
}

int run(const Options& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const std::string load_before = bench::load_average();
  LoadedModel teacher = LoadedModel::open(opt.teacher);
  LoadedModel student = LoadedModel::open(opt.student);
  if (teacher.is_student()) fail("{}: --teacher is a student checkpoint", opt.teacher);
  if (!student.is_student()) fail("{}: --student is not a student checkpoint", opt.student);
  if (teacher.model->config().vocab_size != student.model->config().vocab_size)
    fail("{}: the student's vocabulary differs from the teacher's", opt.student);
  const std::vector<int32_t> warm = bench::random_ids(64, teacher.model->config().vocab_size, 5);
  warm_up(*teacher.model, *student.model, warm);
  StudentFill fill;
  const std::vector<DecodeRow> decode = bench_decode(*teacher.model, *student.model, opt, fill);
  const std::vector<PrefillRow> prefill = bench_prefill(*teacher.model, *student.model, opt);
  print_decode(decode, opt);
  print_prefill(prefill, opt);
  print_notes(opt, fill, load_before);
  return 0;
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options opt;
  CLI::App app{"Student vs teacher decode and prefill speed, measured in one process"};
  app.add_option("--teacher", opt.teacher, "Teacher checkpoint (HF directory or GGUF)")->capture_default_str();
  app.add_option("--student", opt.student, "Student checkpoint directory (arwkv convert)")->required();
  app.add_option("--contexts", opt.contexts, "Decode contexts D")->delimiter(',')->capture_default_str();
  app.add_option("--prefill", opt.prefill, "Prefill lengths T (0: none)")->delimiter(',')->capture_default_str();
  app.add_option("--teacher-prefill-max", opt.teacher_prefill_max,
                 "Largest context the teacher prefills for real; beyond, its cache is written with random values")
      ->capture_default_str();
  app.add_option("--n-gen", opt.n_gen, "Decode tokens per repetition")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--reps", opt.reps, "Repetitions of each case")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--threads", opt.threads, "OpenMP threads (default: OMP_NUM_THREADS or all)");
  CLI11_PARSE(app, argc, argv);
  try {
    return arwkv::run(opt);
  } catch (const arwkv::Error& e) {
    std::fprintf(stderr, "bench_student: %s\n", e.what());
    return 1;
  }
}
