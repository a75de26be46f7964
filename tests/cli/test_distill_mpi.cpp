// Data-parallel `arwkv distill` under mpirun (Open MPI), on the smoke fixtures of
// configs/smoke/make_smoke.sh: two ranks log the losses of one process with the same global batch
// (every stage: align, kd with micro-batches, sft), with the optimiser sharded (zero = 1), whole
// on every rank (0), or sharded with gradients reduced to their owners (2); only rank 0 writes metrics and students; a checkpoint of two ranks resumes on one
// and on two, and one of a single process on two, each to the uninterrupted run's losses; a rank
// killed with SIGKILL ends the run with a non-zero status and a message naming it, leaves no
// half-written checkpoint, and the run resumes to the same losses.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"

namespace fs = std::filesystem;
using arwkv::test::CliRun;
using arwkv::test::read_metrics;
using arwkv::test::repo_file;
using arwkv::test::run_arwkv;
using nlohmann::json;

namespace {

#ifdef ARWKV_MPIEXEC
constexpr const char* kMpiexec = ARWKV_MPIEXEC;
#else
constexpr const char* kMpiexec = "";
#endif

CliRun run_shell(const std::string& cmd) {
  CliRun r;
  FILE* p = popen((cmd + " 2>&1 < /dev/null").c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// mpirun -np N, allowed as root and on more ranks than cores (CI has two).
std::string mpirun(int ranks) {
  std::string cmd = std::string(kMpiexec) + " --oversubscribe -np " + std::to_string(ranks);
  if (geteuid() == 0) cmd += " --allow-run-as-root";
  return cmd;
}

CliRun distill_on(int ranks, const std::string& config, const std::string& out) {
  const std::string args = " distill " + config + " --out " + out;
  if (ranks == 0) return run_arwkv(args);  // a plain process, no launcher
  return run_shell(mpirun(ranks) + " " + arwkv::test::arwkv_bin() + args);
}

// Every train and val record of b equals a's (same stage, step; loss, kl, top1 within rel).
void expect_same_losses(const std::vector<json>& a, const std::vector<json>& b, double rel) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].at("type"), b[i].at("type")) << i;
    ASSERT_EQ(a[i].at("stage"), b[i].at("stage")) << i;
    ASSERT_EQ(a[i].at("step"), b[i].at("step")) << i;
    for (const char* k : {"loss", "kl", "top1"}) {
      if (!a[i].contains(k)) continue;
      const double x = a[i].at(k).get<double>(), y = b[i].at(k).get<double>();
      EXPECT_LE(std::abs(x - y), rel * std::max(std::abs(x), 1e-12))
          << a[i].at("stage") << " " << a[i].at("type") << " step " << a[i].at("step") << " " << k << ": " << x
          << " vs " << y;
    }
  }
}

// A copy of a run directory whose latest checkpoint is the named one (kept by the run), so that
// running the config on it again resumes there.
void rewind_to(const fs::path& from, const fs::path& to, const std::string& checkpoint) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  ASSERT_TRUE(fs::exists(to / "checkpoints" / checkpoint)) << checkpoint << " was not kept";
  std::ofstream(to / "latest") << "checkpoints/" << checkpoint << "\n";
}

class DistillMpi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::string(kMpiexec).empty()) return;
    // A launcher that cannot start two processes here (no shared memory, no network) is not this
    // program's failure: the tests say so and skip.
    const CliRun probe = run_shell(mpirun(2) + " true");
    if (probe.status != 0) {
      no_launcher_ = "mpirun cannot start 2 processes here: " + probe.output;
      return;
    }
    dir_ = arwkv::test::temp_file("arwkv_distill_mpi").string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string make = "bash " + repo_file("configs/smoke/make_smoke.sh") + " " + arwkv::test::arwkv_bin() +
                             " " + dir_ + " > " + dir_ + "/make.log 2>&1";
    if (std::system(make.c_str()) != 0) {
      error_ = "make_smoke.sh failed (see " + dir_ + "/make.log)";
      return;
    }
    fs::current_path(dir_);
    one_ = distill_on(0, config(), "runs/one");
    two_ = distill_on(2, config(), "runs/two");
  }
  static void TearDownTestSuite() {
    if (!dir_.empty() && error_.empty() && !HasFailure()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (std::string(kMpiexec).empty()) GTEST_SKIP() << "built without MPI (libopenmpi-dev)";
    if (!no_launcher_.empty()) GTEST_SKIP() << no_launcher_;
    ASSERT_TRUE(error_.empty()) << error_;
    ASSERT_EQ(one_.status, 0) << one_.output;
    ASSERT_EQ(two_.status, 0) << two_.output;
  }
  static std::string config() { return repo_file("configs/smoke.toml"); }
  static inline std::string dir_, error_, no_launcher_;
  static inline CliRun one_, two_;
};

TEST_F(DistillMpi, TwoRanksLogTheLossesOfOneProcess) {
  const std::vector<json> one = read_metrics("runs/one/metrics.jsonl"), two = read_metrics("runs/two/metrics.jsonl");
  expect_same_losses(one, two, 1e-6);
  int trains = 0;
  for (const json& r : two)
    if (r.at("type") == "train") {
      ++trains;
      EXPECT_EQ(r.at("ranks"), 2);
      EXPECT_GT(r.at("comm_bytes").get<uint64_t>(), 0u);
    }
  EXPECT_EQ(trains, 10 + 4 + 4);
  for (const char* stage : {"align", "kd", "sft"}) EXPECT_TRUE(fs::exists(fs::path("runs/two") / stage / "config.json"));
  EXPECT_NE(two_.output.find("2 ranks"), std::string::npos) << two_.output;
  EXPECT_NE(two_.output.find(" MB ETA"), std::string::npos) << two_.output;  // bytes sent, per step
  // Rank 0 alone prints: each stage's student is announced once.
  size_t wrote = 0;
  for (size_t at = two_.output.find("[align] wrote"); at != std::string::npos; at = two_.output.find("[align] wrote", at + 1))
    ++wrote;
  EXPECT_EQ(wrote, 1u) << two_.output;
}

TEST_F(DistillMpi, OptimiserWholeShardedOrReducedToOwnersGivesTheSameLosses) {
  // The final checkpoint holds rank 0's and rank 1's optimiser parts, not a whole file.
  const fs::path last = fs::path("runs/two/checkpoints/sft-4");
  EXPECT_TRUE(fs::exists(last / "optimizer-0-of-2.safetensors"));
  EXPECT_TRUE(fs::exists(last / "optimizer-1-of-2.safetensors"));
  EXPECT_FALSE(fs::exists(last / "optimizer.safetensors"));
  // zero = 0: every rank holds and updates the whole optimiser; zero = 2: each gradient part is
  // summed on its owner only (fewer bytes sent than zero = 1's all-reduce). The same losses.
  std::string text;
  {
    std::ifstream in(config());
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto sent = [](const std::vector<json>& m) {
    uint64_t n = 0;
    for (const json& r : m)
      if (r.at("type") == "train") n += r.at("comm_bytes").get<uint64_t>();
    return n;
  };
  const uint64_t sent1 = sent(read_metrics("runs/two/metrics.jsonl"));
  for (int zero : {0, 2}) {
    std::string variant = text;
    variant.replace(variant.find("[run]\n"), 6, "[run]\nzero = " + std::to_string(zero) + "\n");
    const std::string cfg = "zero" + std::to_string(zero) + ".toml", out = "runs/zero" + std::to_string(zero);
    std::ofstream(cfg) << variant;
    const CliRun r = distill_on(2, cfg, out);
    ASSERT_EQ(r.status, 0) << r.output;
    const std::vector<json> m = read_metrics(fs::path(out) / "metrics.jsonl");
    expect_same_losses(read_metrics("runs/one/metrics.jsonl"), m, 1e-6);
    EXPECT_TRUE(fs::exists(fs::path(out) / "checkpoints/sft-4" /
                           (zero == 0 ? "optimizer.safetensors" : "optimizer-1-of-2.safetensors")));
    if (zero == 2) {
      EXPECT_LT(sent(m), sent1);
    }
  }
}

TEST_F(DistillMpi, CheckpointsResumeOnAnotherNumberOfRanks) {
  const std::vector<json> one = read_metrics("runs/one/metrics.jsonl");
  struct Case {
    const char* from;
    int ranks;
  };
  for (const Case c : {Case{"runs/two", 0}, Case{"runs/two", 2}, Case{"runs/one", 2}}) {
    const std::string out = std::string(c.from) + "-resumed-on-" + std::to_string(c.ranks);
    rewind_to(c.from, out, "sft-2");
    fs::remove_all(fs::path(out) / "sft");
    const CliRun r = distill_on(c.ranks, config(), out);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("resuming at step 2"), std::string::npos) << r.output;
    expect_same_losses(one, read_metrics(fs::path(out) / "metrics.jsonl"), 1e-6);
    EXPECT_TRUE(fs::exists(fs::path(out) / "sft" / "model.safetensors")) << out;
  }
}

TEST_F(DistillMpi, BatchTooSmallForTheRanksIsRefused) {
  const CliRun r = distill_on(3, config(), "runs/three");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("batch 2 gives 3 ranks less than 1 row each"), std::string::npos) << r.output;
}

// A longer single-stage run, long enough to kill a rank in the middle of it.
std::string long_config() {
  const std::string text = R"([run]
out = "runs/long"
seed = 3
student = "runs/smoke-student"
teacher = "runs/smoke-teacher"
data = "runs/smoke-data"
threads = 1
log_every = 1000

[[stage]]
name = "align"
kind = "align"
train = ["time_mix"]
tokens = 96000
seq_len = 32
batch = 2
lr = 3e-3
min_lr = 3e-4
warmup = 10
eval_every = 500
eval_batches = 2
checkpoint_every = 100
)";
  std::ofstream("long.toml") << text;
  return "long.toml";
}

TEST_F(DistillMpi, KilledRankEndsTheRunWhichResumes) {
  const std::string cfg = long_config();
  const CliRun whole = distill_on(2, cfg, "runs/long-whole");
  ASSERT_EQ(whole.status, 0) << whole.output;

  const fs::path out = "runs/long-killed";
  fs::remove_all(out);
  fs::create_directories(out);
  // Each rank records its pid (exec keeps it) so that the test can kill rank 1 alone.
  const std::string cmd = mpirun(2) + " sh -c 'echo $$ > " + out.string() + "/pid.$OMPI_COMM_WORLD_RANK; exec " +
                          arwkv::test::arwkv_bin() + " distill " + cfg + " --out " + out.string() + "' > " +
                          out.string() + "/mpirun.log 2>&1";
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path latest = out / "latest", pid1 = out / "pid.1";
  while (!(fs::exists(latest) && fs::exists(pid1)) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(fs::exists(latest)) << "no checkpoint within 60 s";
  pid_t victim = 0;
  std::ifstream(pid1) >> victim;
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  waitpid(launcher, &status, 0);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::string log;
  {
    std::ifstream in(out / "mpirun.log");
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0) << log;
  EXPECT_LT(waited, 30.0) << log;
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out / "align")) << "killed too late to test a resume";
  // What latest points at is whole.
  std::string rel;
  std::getline(std::ifstream(latest), rel);
  for (const char* f : {"state.json", "params.safetensors", "optimizer-0-of-2.safetensors",
                        "optimizer-1-of-2.safetensors", "config.toml"})
    EXPECT_TRUE(fs::exists(out / rel / f)) << rel << "/" << f;

  const CliRun resumed = distill_on(2, cfg, out.string());
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  expect_same_losses(read_metrics("runs/long-whole/metrics.jsonl"), read_metrics(out / "metrics.jsonl"), 1e-6);
}

}  // namespace
