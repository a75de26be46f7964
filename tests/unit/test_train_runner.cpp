// The stage runner over a toy objective (test_train_util.h): the same seed gives bit-identical
// losses; gradient accumulation equals one bigger batch; a run stopped after a checkpoint and
// resumed gives the losses, validation records and final student of an uninterrupted run; so does
// a run killed with SIGKILL at random moments in a child process, resumed over and over; the
// student of each stage is written, the next stage starts from it; the curves are a valid PNG.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "core/error.h"
#include "formats/safetensors.h"
#include "train/trainer.h"
#include "unit/test_train_util.h"

using namespace arwkv;
using arwkv::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Env {
  TempDir dir;
  std::string data;
  Env() {
    arwkv::test::register_toy_objective();
    data = arwkv::test::write_toy_data(dir);
  }
  std::string out(const std::string& name) const { return (dir.path / name).string(); }
  TrainConfig config(const std::string& out, const std::string& extra = "") const {
    return parse_train_config(arwkv::test::toy_config(out, data, extra), "toy.toml");
  }
};

using Losses = std::map<std::pair<int, int64_t>, double>;  // (stage, step) -> loss

Losses run(const TrainConfig& c, TrainerOptions opt = {}) {
  Losses l;
  opt.progress = false;
  opt.on_step = [&](const StepRecord& r) { l[{r.stage_index, r.step}] = r.loss; };
  run_training(c, opt);
  return l;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The metrics without the fields that measure time.
std::vector<nlohmann::json> metrics_of(const std::string& out) {
  std::vector<nlohmann::json> recs;
  std::ifstream in(out + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("tokens_per_s");
    j.erase("seconds");
    recs.push_back(j);
  }
  return recs;
}

// Equal files, without printing their bytes when they differ.
void expect_same_file(const std::string& a, const std::string& b) {
  EXPECT_TRUE(read_file(a) == read_file(b)) << a << " differs from " << b;
}

// Equal metrics records; the first that differs is shown.
void expect_same_metrics(const std::string& out, const std::string& reference) {
  const auto a = metrics_of(out), b = metrics_of(reference);
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    if (a[i] != b[i]) {
      ADD_FAILURE() << "record " << i << ": " << a[i].dump() << " vs " << b[i].dump();
      return;
    }
}

TEST(Trainer, SameSeedBitIdenticalLosses) {
  Env env;
  const Losses a = run(env.config(env.out("a"))), b = run(env.config(env.out("b")));
  ASSERT_EQ(a.size(), 25u + 18u);  // ceil(1800 / 72) and ceil(700 / 39) steps
  for (const auto& [k, v] : a) EXPECT_EQ(v, b.at(k)) << "stage " << k.first << " step " << k.second;
  expect_same_file(env.out("a") + "/second/model.safetensors", env.out("b") + "/second/model.safetensors");
  // The loss falls, and another seed gives another data order.
  EXPECT_LT(a.at({0, 25}), a.at({0, 1}));
  TrainConfig other = env.config(env.out("c"));
  other.run.seed = 43;
  const Losses c = run(other);
  EXPECT_NE(c.at({0, 1}), a.at({0, 1}));
}

TEST(Trainer, StageOutputsAndTheNextStageStartsFromThem) {
  Env env;
  const std::string out = env.out("run");
  run(env.config(out));
  for (const char* stage : {"first", "second"}) EXPECT_TRUE(fs::exists(out + "/" + stage + "/model.safetensors"));
  const auto first = SafetensorsFile::open(out + "/first/model.safetensors");
  const auto second = SafetensorsFile::open(out + "/second/model.safetensors");
  // The second stage trains only the head: E and c come through from the first stage unchanged.
  EXPECT_EQ(first->load("toy.E").values, second->load("toy.E").values);
  EXPECT_EQ(first->load("toy.c").values, second->load("toy.c").values);
  EXPECT_NE(first->load("toy.w").values, second->load("toy.w").values);
  // Validation records: every eval_every steps and at each stage end.
  int val0 = 0, val1 = 0;
  for (const auto& r : metrics_of(out))
    if (r["type"] == "val") (r["stage_index"] == 0 ? val0 : val1)++;
  EXPECT_EQ(val0, 5);
  EXPECT_EQ(val1, 1);
  // At most keep_checkpoints (2) are kept; latest is the second stage's end.
  EXPECT_EQ(read_file(out + "/latest"), "checkpoints/second-18\n");
  int n = 0;
  for (const auto& e : fs::directory_iterator(out + "/checkpoints")) n += e.is_directory();
  EXPECT_EQ(n, 2);
  // Running again finds the run complete and does nothing.
  EXPECT_TRUE(run(env.config(out)).empty());
}

TEST(Trainer, AccumulationEqualsABiggerBatch) {
  Env env;
  TrainConfig acc = env.config(env.out("acc")), big = env.config(env.out("big"));
  acc.stages.resize(1);
  big.stages.resize(1);
  acc.stages[0].batch = 2;
  acc.stages[0].grad_accum = 2;
  big.stages[0].batch = 4;
  big.stages[0].grad_accum = 1;
  const Losses a = run(acc), b = run(big);
  ASSERT_EQ(a.size(), 1800u / 36);
  for (const auto& [k, v] : a) EXPECT_NEAR(v, b.at(k), 1e-6 * std::fabs(v)) << "step " << k.second;
  const auto fa = SafetensorsFile::open(env.out("acc") + "/first/model.safetensors");
  const auto fb = SafetensorsFile::open(env.out("big") + "/first/model.safetensors");
  EXPECT_LT(arwkv::test::max_rel_error(fa->load("toy.E").values, fb->load("toy.E").values), 1e-5);
}

// The toy's parameters (host memory on the reference backend), concatenated.
std::vector<float> toy_values(arwkv::test::ToyObjective& toy) {
  std::vector<float> v;
  for (const Parameter& p : toy.parameters()) v.insert(v.end(), p.value.f32(), p.value.f32() + p.value.numel());
  return v;
}

TrainConfig poisoned(const Env& env, const std::string& out, const std::string& run_extra = "") {
  std::string text = arwkv::test::toy_config(out, env.data);
  text.replace(text.find("kind = \"toy\""), 12, "kind = \"toy_poisoned\"");
  text.replace(text.find("[[stage]]"), 0, run_extra + "\n");
  return parse_train_config(text, "toy.toml");
}

// Steps 3 (a NaN loss) and 4 (an infinite gradient) of the first stage are skipped: the parameters
// after them are those after step 2, each is a "skip" record and not a "train" one, and the run
// goes on to the end with finite losses.
TEST(Trainer, NonFiniteStepsAreSkippedAndLogged) {
  Env env;
  auto& tp = arwkv::test::toy_poison();
  tp.poison = [](int64_t call) { return call / 2 == 2 ? 1 : call / 2 == 3 ? 2 : 0; };  // grad_accum = 2
  std::map<int64_t, std::vector<float>> after;
  TrainerOptions opt;
  opt.progress = false;
  opt.on_step = [&](const StepRecord& r) {
    if (r.stage_index == 0 && r.step <= 5) after[r.step] = toy_values(*tp.last);
  };
  const std::string out = env.out("poisoned");
  run_training(poisoned(env, out), opt);
  tp = {};
  EXPECT_NE(after.at(1), after.at(2));
  EXPECT_EQ(after.at(2), after.at(3));
  EXPECT_EQ(after.at(2), after.at(4));
  EXPECT_NE(after.at(4), after.at(5));
  std::vector<int64_t> skipped, trained;
  for (const nlohmann::json& j : metrics_of(out)) {
    if (j["stage"] != "first") continue;
    if (j["type"] == "skip") skipped.push_back(j["step"].get<int64_t>());
    if (j["type"] == "train") {
      trained.push_back(j["step"].get<int64_t>());
      EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
    }
  }
  EXPECT_EQ(skipped, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(trained.size(), 23u);
  for (float x : SafetensorsFile::open(out + "/second/model.safetensors")->load("toy.E").values)
    EXPECT_TRUE(std::isfinite(x));
}

// From step 6 on every step is NaN: with max_bad_steps = 3 the run stops at step 8 with an error
// that says so, before that step's checkpoint; the checkpoint of step 4 resumes (without the
// poison) to the losses of a run that never saw a NaN.
TEST(Trainer, TooManyNonFiniteStepsInARowStopTheRun) {
  Env env;
  const Losses clean = run(env.config(env.out("clean")));
  auto& tp = arwkv::test::toy_poison();
  tp.poison = [](int64_t call) { return call >= 10 ? 1 : 0; };
  const std::string out = env.out("stopped");
  try {
    run(poisoned(env, out, "max_bad_steps = 3"));
    ADD_FAILURE() << "the run did not stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 steps in a row (to step 8)"), std::string::npos) << e.what();
  }
  tp = {};
  const Losses rest = run(poisoned(env, out, "max_bad_steps = 3"));
  EXPECT_EQ(rest.begin()->first, (std::pair<int, int64_t>{0, 5}));
  for (const auto& [k, v] : rest) EXPECT_EQ(v, clean.at(k)) << "stage " << k.first << " step " << k.second;
}

struct Stop {};

TEST(Trainer, ResumeAfterACheckpointGivesTheSameLosses) {
  Env env;
  const Losses full = run(env.config(env.out("full")));
  const std::string out = env.out("stopped");
  Losses got;
  // Stop (as a crash would) after steps 10 and 22 of the first stage and 5 of the second: the
  // run resumes from the checkpoints at steps 8, 20 and 3 and redoes the steps after them.
  for (const std::pair<int, int64_t> stop : {std::pair{0, 10}, {0, 22}, {1, 5}}) {
    TrainerOptions opt;
    opt.progress = false;
    opt.on_step = [&](const StepRecord& r) {
      got[{r.stage_index, r.step}] = r.loss;
      if (std::pair{r.stage_index, r.step} == stop) throw Stop{};
    };
    EXPECT_THROW(run_training(env.config(out), opt), Stop);
  }
  const Losses rest = run(env.config(out));
  for (const auto& [k, v] : rest) got[k] = v;
  EXPECT_EQ(rest.begin()->first, (std::pair<int, int64_t>{1, 4}));
  ASSERT_EQ(got.size(), full.size());
  for (const auto& [k, v] : full) EXPECT_EQ(v, got.at(k)) << "stage " << k.first << " step " << k.second;
  expect_same_metrics(out, env.out("full"));
  expect_same_file(out + "/second/model.safetensors", env.out("full") + "/second/model.safetensors");
}

// A child process trains, sleeping a little in each step so kills land everywhere; the parent
// kills it after a random delay, again and again, then finishes the run in-process.
TEST(Trainer, SigkillAtRandomMomentsThenResume) {
  Env env;
  const std::string full = env.out("full"), out = env.out("killed");
  run(env.config(full));
  std::mt19937 rng(1234);
  int kills = 0, resumed_kills = 0, finished = 0;
  for (int attempt = 0; attempt < 60 && !finished; ++attempt) {
    const bool resuming = fs::exists(out + "/latest");
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        TrainerOptions opt;
        opt.progress = false;
        opt.on_step = [](const StepRecord&) { std::this_thread::sleep_for(std::chrono::microseconds(3000)); };
        run_training(env.config(out), opt);
      } catch (...) {
        _exit(2);
      }
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(3000, 40000 + 10000 * attempt)(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "the child failed to resume";
      finished = 1;
    } else {
      ASSERT_TRUE(WIFSIGNALED(status));
      ++kills;
      resumed_kills += resuming;
    }
  }
  EXPECT_GE(resumed_kills, 3) << kills << " kills";
  run(env.config(out));
  expect_same_metrics(out, full);
  expect_same_file(out + "/first/model.safetensors", full + "/first/model.safetensors");
  expect_same_file(out + "/second/model.safetensors", full + "/second/model.safetensors");
  for (const auto& e : fs::directory_iterator(out + "/checkpoints"))
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp")) << e.path();
}

TEST(Trainer, ACheckpointOfAnotherConfigIsRefused) {
  Env env;
  const std::string out = env.out("run");
  TrainerOptions opt;
  opt.max_steps = 4;
  run(env.config(out), opt);
  TrainConfig renamed = env.config(out);
  renamed.stages[1].name = "other";
  try {
    run(renamed);
    FAIL() << "resumed into another config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'second'"), std::string::npos) << e.what();
  }
}

// PNG read back with zlib: signature, IHDR size, every chunk's CRC, and the inflated rows.
TEST(Trainer, CurvesAreAValidPng) {
  Env env;
  const std::string out = env.out("run");
  run(env.config(out));
  const std::string png = read_file(out + "/curves.png");
  ASSERT_GT(png.size(), 8u);
  ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto u32 = [&](size_t at) {
    return (uint32_t{static_cast<uint8_t>(png[at])} << 24) | (uint32_t{static_cast<uint8_t>(png[at + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(png[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(png[at + 3])};
  };
  size_t at = 8;
  uint32_t w = 0, h = 0;
  std::string idat;
  while (at + 12 <= png.size()) {
    const uint32_t len = u32(at);
    const std::string type = png.substr(at + 4, 4);
    const auto* p = reinterpret_cast<const Bytef*>(png.data() + at + 4);
    EXPECT_EQ(crc32(0, p, len + 4), u32(at + 8 + len)) << type;
    if (type == "IHDR") w = u32(at + 8), h = u32(at + 12);
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
    if (type == "IEND") break;
  }
  EXPECT_EQ(at, png.size());
  EXPECT_EQ(w, 960u);
  EXPECT_EQ(h, 2u * 330u);  // a row per stage
  std::vector<uint8_t> raw(static_cast<size_t>(h) * (1 + 3 * w));
  uLongf n = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(idat.data()), idat.size()), Z_OK);
  EXPECT_EQ(n, raw.size());
  size_t red = 0, dark_blue = 0;  // validation and smoothed-train pixels
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x) {
      const uint8_t* q = &raw[y * (1 + 3 * w) + 1 + 3 * x];
      red += q[0] == 200 && q[1] == 30 && q[2] == 30;
      dark_blue += q[0] == 20 && q[1] == 80 && q[2] == 170;
    }
  EXPECT_GT(red, 50u);
  EXPECT_GT(dark_blue, 200u);
}

}  // namespace
