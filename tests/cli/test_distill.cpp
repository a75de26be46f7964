// `arwkv distill` end to end on the committed smoke config: configs/smoke/make_smoke.sh makes the
// tiny teacher, its student and the text and chat data from committed files, the program runs
// configs/smoke.toml (align, kd, sft), and the test reads what it wrote: metrics.jsonl (finite
// losses, the align validation loss falling), curves.png, each stage's student (loadable by
// generate; align changed only time-mix tensors, against the converted student), and a run killed
// with SIGKILL after its first checkpoint that, resumed, logs the losses of the uninterrupted run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "backend/ops.h"
#include "cli_util.h"
#include "dist/comm.h"
#include "formats/safetensors.h"

namespace fs = std::filesystem;
using arwkv::test::CliRun;
using arwkv::test::read_metrics;
using arwkv::test::repo_file;
using arwkv::test::run_arwkv;
using nlohmann::json;

namespace {

std::vector<json> records(const std::vector<json>& all, const std::string& type, const std::string& stage) {
  std::vector<json> out;
  for (const json& r : all)
    if (r.at("type") == type && r.at("stage") == stage) out.push_back(r);
  return out;
}

// The smoke fixtures and one uninterrupted run, made once in a directory of this process; the
// tests run the program from there (the config's paths are relative).
class Distill : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = arwkv::test::temp_file("arwkv_distill").string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string make = "bash " + repo_file("configs/smoke/make_smoke.sh") + " " + arwkv::test::arwkv_bin() +
                             " " + dir_ + " > " + dir_ + "/make.log 2>&1";
    if (std::system(make.c_str()) != 0) {
      error_ = "make_smoke.sh failed (see " + dir_ + "/make.log)";
      return;
    }
    fs::current_path(dir_);
    run_ = run_arwkv("distill " + config());
  }
  static void TearDownTestSuite() {
    if (!dir_.empty() && error_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    ASSERT_TRUE(error_.empty()) << error_;
    ASSERT_EQ(run_.status, 0) << run_.output;
  }
  static std::string config() { return repo_file("configs/smoke.toml"); }
  static inline std::string dir_, error_;
  static inline CliRun run_;
};

}  // namespace

TEST_F(Distill, EveryStageLogsFiniteLossesAndAlignLearns) {
  const std::vector<json> m = read_metrics("runs/smoke/metrics.jsonl");
  const std::pair<const char*, size_t> stages[] = {{"align", 10}, {"kd", 4}, {"sft", 4}};
  for (const auto& [stage, steps] : stages) {
    const std::vector<json> train = records(m, "train", stage), val = records(m, "val", stage);
    ASSERT_EQ(train.size(), steps) << stage;
    EXPECT_GE(val.size(), 2u) << stage;
    for (const json& r : train) {
      EXPECT_TRUE(std::isfinite(r.at("loss").get<double>())) << r;
      EXPECT_GT(r.at("loss").get<double>(), 0.0) << r;  // no step without a counted target
      EXPECT_TRUE(std::isfinite(r.at("grad_norm").get<double>())) << r;
    }
    for (const json& r : val) EXPECT_TRUE(std::isfinite(r.at("loss").get<double>())) << r;
  }
  const std::vector<json> align = records(m, "val", "align");
  ASSERT_GE(align.size(), 2u);
  const double first = align.front().at("loss"), last = align.back().at("loss");
  EXPECT_LT(last, 0.5 * first) << "align validation loss " << first << " -> " << last;
  EXPECT_TRUE(align.back().contains("kl"));
  EXPECT_TRUE(records(m, "val", "kd").back().contains("top1"));

  std::ifstream png("runs/smoke/curves.png", std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(Distill, StageStudentsLoadAndSpeak) {
  for (const char* stage : {"align", "kd", "sft"}) {
    const fs::path dir = fs::path("runs/smoke") / stage;
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                          "generation_config.json"})
      EXPECT_TRUE(fs::exists(dir / f)) << (dir / f);
    CliRun g = run_arwkv("generate -m " + dir.string() + " -p \"The cat\" -n 6 --temperature 0 -q");
    EXPECT_EQ(g.status, 0) << g.output;
    EXPECT_GT(g.output.size(), 1u) << stage;
  }
}

// Align trains only the time-mix tensors: against the converted student, every time-mix tensor
// file changed and every other one (embedding, norms, MLP, head) is bit-identical.
TEST_F(Distill, AlignChangesOnlyTimeMix) {
  const auto before = arwkv::SafetensorsFile::open("runs/smoke-student/model.safetensors");
  const auto after = arwkv::SafetensorsFile::open("runs/smoke/align/model.safetensors");
  int changed = 0, kept = 0;
  for (const arwkv::SafetensorsEntry& e : before->tensors()) {
    const arwkv::HostTensor a = before->load(e.name), b = after->load(e.name);
    ASSERT_EQ(a.values.size(), b.values.size()) << e.name;
    const bool same = a.values == b.values;
    const bool time_mix = e.name.find(".time_mixer.") != std::string::npos;
    // r_k starts at zero and k_a at one in a transferred student; both still receive gradient.
    if (time_mix) EXPECT_FALSE(same) << e.name << " did not train";
    else EXPECT_TRUE(same) << e.name << " changed";
    (time_mix ? changed : kept) += 1;
  }
  EXPECT_GT(changed, 20);
  EXPECT_GT(kept, 5);
}

// SIGKILL once the first checkpoint exists, then the same command again: the losses of the
// resumed run are those of the uninterrupted one (bit-exact on the CPU backend, one thread).
// The whole run again on the CUDA backend's kernels (under the CPU emulation of the CUDA execution
// model; on the GPU itself as well where there is one): every logged loss as on the CPU backend.
TEST_F(Distill, CudaBackendTrainsLikeTheCpuBackend) {
  std::vector<std::string> backends = {"cuda-emulated"};
  if (arwkv::cuda_available()) backends.push_back("cuda");
  const std::vector<json> want = read_metrics("runs/smoke/metrics.jsonl");
  for (const std::string& backend : backends) {
    const std::string out = "runs/smoke-" + backend;
    fs::remove_all(out);
    CliRun run = run_arwkv("distill " + config() + " --backend " + backend + " --out " + out);
    ASSERT_EQ(run.status, 0) << run.output;
    const std::vector<json> got = read_metrics(fs::path(out) / "metrics.jsonl");
    ASSERT_EQ(want.size(), got.size()) << backend;
    for (size_t i = 0; i < want.size(); ++i) {
      if (!want[i].contains("loss")) continue;
      const double w = want[i].at("loss").get<double>(), g = got[i].at("loss").get<double>();
      EXPECT_NEAR(g, w, 2e-5 * std::max(1.0, std::fabs(w))) << backend << ", record " << i;
    }
  }
}

// [run] comm = "nccl" sends the gradients through NCCL even on one rank: on one GPU the losses are
// the plain CUDA run's. Two GPUs: scripts/check_cuda.sh.
std::string with_run_key(const std::string& config, const std::string& line) {
  std::ifstream in(config);
  std::string text(std::istreambuf_iterator<char>(in), {});
  text.replace(text.find("[run]\n"), 6, "[run]\n" + line + "\n");
  return text;
}

TEST_F(Distill, CudaNcclOnOneRankLogsThePlainCudaLosses) {
  std::string why;
  if (!arwkv::cuda_available(&why)) GTEST_SKIP() << "no usable GPU for the cuda backend: " << why;
  if (!arwkv::nccl_built()) GTEST_SKIP() << "built without NCCL";
  std::ofstream("nccl.toml") << with_run_key(config(), "comm = \"nccl\"");
  fs::remove_all("runs/cuda-plain");
  fs::remove_all("runs/cuda-nccl");
  const CliRun plain = run_arwkv("distill " + config() + " --backend cuda --out runs/cuda-plain");
  ASSERT_EQ(plain.status, 0) << plain.output;
  const CliRun nccl = run_arwkv("distill nccl.toml --backend cuda --out runs/cuda-nccl");
  ASSERT_EQ(nccl.status, 0) << nccl.output;
  EXPECT_NE(nccl.output.find("tensors through nccl"), std::string::npos) << nccl.output;
  const std::vector<json> want = read_metrics("runs/cuda-plain/metrics.jsonl"),
                          got = read_metrics("runs/cuda-nccl/metrics.jsonl");
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].contains("loss")) continue;
    const double w = want[i].at("loss").get<double>(), g = got[i].at("loss").get<double>();
    EXPECT_NEAR(g, w, 1e-6 * std::max(1.0, std::fabs(w))) << "record " << i;
  }
}

// Without a GPU backend (or a build with NCCL) comm = "nccl" is refused by the config's name
// before anything is written.
TEST_F(Distill, NcclWithoutAGpuIsRefusedBeforeAnythingIsWritten) {
  std::ofstream("nccl-cpu.toml") << with_run_key(config(), "comm = \"nccl\"");
  fs::remove_all("runs/nccl-cpu");
  const CliRun r = run_arwkv("distill nccl-cpu.toml --out runs/nccl-cpu");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("nccl-cpu.toml: [run] comm = \"nccl\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(arwkv::nccl_built() ? "backend is cpu" : "no NCCL"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists("runs/nccl-cpu"));
}

TEST_F(Distill, KilledRunResumesWithTheSameLosses) {
  const std::string out = "runs/killed";
  fs::remove_all(out);
  const std::string cmd = arwkv::test::arwkv_bin() + " distill " + config() + " --out " + out + " > /dev/null 2>&1";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(fs::path(out) / "latest") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  EXPECT_FALSE(fs::exists(fs::path(out) / "sft")) << "killed too late to test a resume";

  CliRun resumed = run_arwkv("distill " + config() + " --out " + out);
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  const std::vector<json> whole = read_metrics("runs/smoke/metrics.jsonl"), again = read_metrics(fs::path(out) / "metrics.jsonl");
  ASSERT_EQ(whole.size(), again.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole[i].at("stage"), again[i].at("stage")) << i;
    EXPECT_EQ(whole[i].at("step"), again[i].at("step")) << i;
    EXPECT_EQ(whole[i].at("loss").get<double>(), again[i].at("loss").get<double>()) << "record " << i;
  }
}

// Preference data from the sft student (`arwkv pairs`: the smoke chats' last replies chosen, the
// student's own replies rejected, both scored by it), then a dpo stage from that same student: its
// first loss is −log σ(0) = ln 2 (the policy is the reference, so the stored log-probabilities must
// match the training forward's), and a few steps raise the margin. Text data is refused by name.
TEST_F(Distill, DpoStartsAtLn2FromItsReferenceAndLearns) {
  const std::string pairs = "runs/smoke-pairs";
  CliRun made = run_arwkv("pairs -m runs/smoke/sft --chat " + repo_file("configs/smoke/chat.jsonl") + " --out " + pairs +
                          " -n 8 --seed 1 --val-fraction 0.2 --force");
  ASSERT_EQ(made.status, 0) << made.output;
  EXPECT_NE(made.output.find("24 pairs"), std::string::npos) << made.output;
  std::ifstream readable(fs::path(pairs) / "pairs.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(readable, line));
  const json first = json::parse(line);
  for (const char* key : {"prompt", "chosen", "rejected", "ref_logp_chosen", "ref_logp_rejected"})
    EXPECT_TRUE(first.contains(key)) << key;
  EXPECT_LT(first.at("ref_logp_chosen").get<double>(), 0.0);

  const std::string config_text = R"([run]
out = "runs/dpo"
seed = 1
student = "runs/smoke/sft"
data = "runs/smoke-pairs"
threads = 1
log_every = 1

[[stage]]
name = "dpo"
kind = "dpo"
train = ["time_mix", "mlp"]
tokens = 3840         # 6 steps of 4 rows (2 pairs) of 160: the whole chats
seq_len = 160
batch = 4
lr = 3e-3
warmup = 1
beta = 0.5
eval_every = 3
eval_batches = 1
)";
  std::ofstream("dpo.toml") << config_text;
  fs::remove_all("runs/dpo");
  CliRun run = run_arwkv("distill dpo.toml");
  ASSERT_EQ(run.status, 0) << run.output;
  const std::vector<json> train = records(read_metrics("runs/dpo/metrics.jsonl"), "train", "dpo");
  ASSERT_EQ(train.size(), 6u);
  EXPECT_NEAR(train.front().at("loss").get<double>(), std::log(2.0), 1e-4);
  double last = 0;
  for (size_t i = 3; i < train.size(); ++i) last += train[i].at("loss").get<double>() / 3.0;
  EXPECT_LT(last, std::log(2.0) - 0.01) << "three dpo steps did not lower the loss";
  EXPECT_FALSE(records(read_metrics("runs/dpo/metrics.jsonl"), "val", "dpo").empty());
  EXPECT_TRUE(fs::exists("runs/dpo/dpo/model.safetensors"));

  std::string text_config = config_text;
  text_config.replace(text_config.find("runs/smoke-pairs"), 16, "runs/smoke-chat");
  text_config.replace(text_config.find("runs/dpo"), 8, "runs/dpo-text");
  std::ofstream("dpo-text.toml") << text_config;
  CliRun refused = run_arwkv("distill dpo-text.toml");
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output.find("not preference data"), std::string::npos) << refused.output;

  // A chat that does not end on an assistant's reply is refused by file and line, and no data is left.
  std::ofstream("bad.jsonl") << R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]})"
                             << "\n" << R"({"messages": [{"role": "user", "content": "And then?"}]})" << "\n";
  CliRun bad = run_arwkv("pairs -m runs/smoke/sft --chat bad.jsonl --out runs/bad-pairs");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("bad.jsonl:2"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists("runs/bad-pairs"));
}
