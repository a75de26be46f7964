// Peak resident memory of holding a context, student vs teacher (SPEC §7): every measurement is a
// fresh child process (this program re-executed with --child) that loads one model, brings a state
// to D tokens of context, decodes one more token, and reports its VmHWM (peak resident set) and
// VmRSS from /proc/self/status; the parent prints a Markdown table. Separate processes keep one
// measurement's peak out of the next.
// How a state comes to hold D tokens (the "filled by" column):
//   prefill  a real prefill of D seeded random tokens (the model's own chunking);
//   write    the state declares D tokens (set_n_tokens) and every one of its tensors is written
//            with random values (tensors()), touching all of its memory: the resident memory of
//            holding D tokens without a quadratic prefill of the teacher (32K tokens: hours on
//            two cores). A teacher row at 1K is measured both ways to show that they agree.
#include <sys/wait.h>
#include <unistd.h>

#include <omp.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <sstream>
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
  std::vector<int64_t> contexts = {1024, 8192, 32768};
  int64_t teacher_prefill_max = 1024;
  bool student_write = false;
  int threads = 0;
  // child mode
  bool child = false;
  std::string model;
  int64_t context = 0;
  std::string fill = "prefill";
};

// What a child reports, in KiB except where said.
struct Measure {
  int64_t load_hwm = 0, load_rss = 0;      // after loading the model, before any state
  int64_t hwm = 0, rss = 0, anon = 0, file = 0;  // at the end; RSS = anonymous + file-backed (+ shmem)
  int64_t state_bytes = 0;   // ModelState::memory_bytes(): state, capacity and workspace
  double fill_seconds = 0.0;
};

// The child: load, fill, decode one token, report one line on stdout.
int run_child(const Options& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  LoadedModel m = LoadedModel::open(opt.model);
  const LanguageModel& model = *m.model;
  Measure r;
  r.load_hwm = bench::proc_status_kib("VmHWM");
  r.load_rss = bench::proc_status_kib("VmRSS");
  const std::vector<int32_t> ids = bench::random_ids(opt.context + 1, model.config().vocab_size, 2468);
  auto state = model.new_state(opt.context + 1);
  r.fill_seconds = bench::seconds_of([&] {
    if (opt.fill == "prefill") {
      if (opt.context > 0) model.extend(*state, std::span(ids).first(static_cast<size_t>(opt.context)));
    } else {
      bench::write_random_state(model.ops(), *state, opt.context, 13579);
    }
  });
  model.extend(*state, std::span(ids).last(1));
  r.hwm = bench::proc_status_kib("VmHWM");
  r.rss = bench::proc_status_kib("VmRSS");
  r.anon = bench::proc_status_kib("RssAnon");
  r.file = bench::proc_status_kib("RssFile");
  r.state_bytes = static_cast<int64_t>(state->memory_bytes());
  fmt::print("{} {} {} {} {} {} {} {}\n", r.load_hwm, r.load_rss, r.hwm, r.rss, r.anon, r.file, r.state_bytes,
             r.fill_seconds);
  return 0;
}

// Runs this program again with args and returns what it printed; fails when it does not succeed.
std::string run_self(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  static char self[] = "/proc/self/exe";
  argv.push_back(self);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fd[2];
  if (pipe(fd) != 0) fail("bench_memory: pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) fail("bench_memory: fork failed");
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    execv(self, argv.data());
    _exit(127);
  }
  close(fd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("bench_memory: the child for '{}' failed", args.back());
  return out;
}

struct Case {
  std::string kind, path, fill;
  int64_t context = 0;
};

Measure measure(const Case& c, const Options& opt) {
  std::vector<std::string> args = {"--child", "--fill=" + c.fill, fmt::format("--context={}", c.context),
                                    fmt::format("--threads={}", opt.threads), "--model=" + c.path};
  std::istringstream in(run_self(args));
  Measure m;
  if (!(in >> m.load_hwm >> m.load_rss >> m.hwm >> m.rss >> m.anon >> m.file >> m.state_bytes >> m.fill_seconds))
    fail("bench_memory: the child for {} printed no measurement", c.path);
  return m;
}

std::vector<Case> cases_of(const Options& opt) {
  std::vector<Case> cases;
  for (int64_t D : opt.contexts)
    cases.push_back({"teacher", opt.teacher, D <= opt.teacher_prefill_max ? "prefill" : "write", D});
  if (!opt.contexts.empty() && opt.contexts.front() <= opt.teacher_prefill_max)
    cases.push_back({"teacher", opt.teacher, "write", opt.contexts.front()});
  for (int64_t D : opt.contexts) cases.push_back({"student", opt.student, opt.student_write ? "write" : "prefill", D});
  return cases;
}

std::string mib_of_kib(int64_t kib) { return fmt::format("{:.1f}", static_cast<double>(kib) / 1024.0); }

int run_parent(const Options& opt) {
  const std::string load_before = bench::load_average();
  fmt::print("### Peak resident memory holding a context (one fresh process per row)\n\n");
  fmt::print("| model | context | filled by | peak RSS (VmHWM) MiB | RSS at end MiB | of it anon / file MiB | "
             "RSS after loading MiB | RSS growth MiB | state memory_bytes MiB | fill s |\n");
  fmt::print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Case& c : cases_of(opt)) {
    const Measure m = measure(c, opt);
    fmt::print("| {} | {} | {} | {} | {} | {} / {} | {} | {} | {:.1f} | {:.1f} |\n", c.kind, c.context, c.fill,
               mib_of_kib(m.hwm), mib_of_kib(m.rss), mib_of_kib(m.anon), mib_of_kib(m.file), mib_of_kib(m.load_rss),
               mib_of_kib(m.rss - m.load_rss), static_cast<double>(m.state_bytes) / (1 << 20), m.fill_seconds);
    std::fflush(stdout);
  }
  fmt::print("\nteacher {}; student {}. Each process loads its model, fills a state of capacity D+1, decodes one "
             "token, then reads VmHWM/VmRSS.\n", opt.teacher, opt.student);
  fmt::print("prefill: a real prefill of D random tokens; write: set_n_tokens(D) and random values written into "
             "every state tensor (all of a teacher's D cache rows), no prefill.\n");
  fmt::print("RSS growth: RSS at end − RSS after loading (VmHWM after loading can include freed load buffers that "
             "the state then reuses). file: pages of mapped checkpoint files. state memory_bytes: what ModelState "
             "reports (KV cache or RNN state, plus the prefill workspace).\n");
  fmt::print("Load average before: {}, after: {}.\n", load_before, bench::load_average());
  return 0;
}

}  // namespace
}  // namespace arwkv

int main(int argc, char** argv) {
  arwkv::Options opt;
  CLI::App app{"Peak resident memory of holding a context, student vs teacher, one child process each"};
  app.add_option("--teacher", opt.teacher, "Teacher checkpoint (HF directory or GGUF)")->capture_default_str();
  app.add_option("--student", opt.student, "Student checkpoint directory (arwkv convert)");
  app.add_option("--contexts", opt.contexts, "Contexts D")->delimiter(',')->capture_default_str();
  app.add_option("--teacher-prefill-max", opt.teacher_prefill_max,
                 "Largest context the teacher prefills for real; beyond, its cache is written")
      ->capture_default_str();
  app.add_flag("--student-write", opt.student_write, "Write the student's state instead of prefilling it");
  app.add_option("--threads", opt.threads, "OpenMP threads (default: OMP_NUM_THREADS or all)");
  app.add_flag("--child", opt.child, "Internal: measure one case")->group("");
  app.add_option("--model", opt.model, "Internal: the child's model")->group("");
  app.add_option("--context", opt.context, "Internal: the child's context")->group("");
  app.add_option("--fill", opt.fill, "Internal: prefill or write")->check(CLI::IsMember({"prefill", "write"}))->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    if (opt.child) return arwkv::run_child(opt);
    if (opt.student.empty()) arwkv::fail("bench_memory: --student is required");
    return arwkv::run_parent(opt);
  } catch (const arwkv::Error& e) {
    std::fprintf(stderr, "bench_memory: %s\n", e.what());
    return 1;
  }
}
