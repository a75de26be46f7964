// The optimiser pieces and the config: schedule values at chosen steps against the formula worked
// out by hand, a stage's real length from its budget, AdamW's first two steps against the update
// written out in double, global-norm clipping, and config errors that name the file, line and key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "formats/safetensors.h"
#include "test_util.h"
#include "train/config.h"
#include "train/optim.h"

using namespace arwkv;

namespace {

TEST(Schedule, WarmupThenCosineToMinOverTheRealLength) {
  const LrSchedule s{1.0, 0.1, 4, 12};
  EXPECT_DOUBLE_EQ(s.at(1), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 0.75);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(6), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 2 / 8)), 1e-15);
  EXPECT_NEAR(s.at(8), 0.55, 1e-15);  // halfway through the decay
  EXPECT_NEAR(s.at(12), 0.1, 1e-15);
  EXPECT_NEAR(s.at(20), 0.1, 1e-15);
  const LrSchedule none{2.0, 0.0, 0, 5};
  EXPECT_NEAR(none.at(1), 2.0 * 0.5 * (1 + std::cos(M_PI / 5)), 1e-15);
  EXPECT_NEAR(none.at(5), 0.0, 1e-15);
}

TEST(Schedule, StageLengthComesFromItsTokenBudget) {
  StageConfig st;
  st.batch = 2;
  st.seq_len = 10;
  st.grad_accum = 3;
  st.tokens = 1000;  // 60 tokens per step: 16 full steps and a partial one
  EXPECT_EQ(st.total_steps(), 17);
  st.tokens = 1020;
  EXPECT_EQ(st.total_steps(), 17);
  st.tokens = 5;
  EXPECT_EQ(st.total_steps(), 1);
  st.warmup_tokens = 130;
  EXPECT_EQ(st.warmup_steps(), 3);
}

// AdamW from its definition, in double.
struct AdamRef {
  double m = 0, v = 0;
  double step(double p, double g, double lr, double wd, int t) {
    m = 0.9 * m + 0.1 * g;
    v = 0.95 * v + 0.05 * g * g;
    const double mh = m / (1 - std::pow(0.9, t)), vh = v / (1 - std::pow(0.95, t));
    return p * (1 - lr * wd) - lr * mh / (std::sqrt(vh) + 1e-8);
  }
};

void adamw_two_steps(Ops& ops) {
  HostTensor a(Shape{2, 3}), ga(Shape{2, 3}), b(Shape{3}), gb(Shape{3});
  a.values = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, -0.75f};
  b.values = {1.0f, -2.0f, 0.125f};
  const std::vector<float> g1a = {0.1f, -0.2f, 0.3f, 1.5f, -0.01f, 0.0f}, g2a = {-0.3f, 0.2f, 0.1f, 0.5f, 0.02f, 0.7f};
  const std::vector<float> g1b = {2.0f, -0.5f, 0.25f}, g2b = {1.0f, 0.5f, -0.25f};
  std::vector<Parameter> params = {{"a", a.view(), ga.view(), "mlp", true}, {"b", b.view(), gb.view(), "norm", false}};
  AdamW adam(ops, params, AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
  std::vector<double> ea(a.values.begin(), a.values.end()), eb(b.values.begin(), b.values.end());
  std::vector<AdamRef> ra(6), rb(3);
  const double lrs[2] = {0.01, 0.004};
  for (int t = 1; t <= 2; ++t) {
    ga.values = t == 1 ? g1a : g2a;
    gb.values = t == 1 ? g1b : g2b;
    adam.step(lrs[t - 1]);
    for (size_t i = 0; i < 6; ++i) ea[i] = ra[i].step(ea[i], ga.values[i], lrs[t - 1], 0.1, t);
    for (size_t i = 0; i < 3; ++i) eb[i] = rb[i].step(eb[i], gb.values[i], lrs[t - 1], 0.0, t);
  }
  EXPECT_EQ(adam.steps(), 2);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(a.values[i], ea[i], 2e-7) << "a[" << i << "]";
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(b.values[i], eb[i], 2e-7) << "b[" << i << "]";
  // The first step moves every element with a non-zero gradient by about lr (Adam's unit step).
  EXPECT_GT(std::fabs(a.values[5] - (-0.75f)), 0.0f);
}

// A parameter's lr_scale multiplies the rate it is updated at: scale 0.25 moves it as a quarter of
// the rate would, scale 0 not at all.
TEST(AdamW, LrScaleMultipliesTheRate) {
  auto ops = make_cpu_ops();
  HostTensor a(Shape{3}), ga(Shape{3}), b(Shape{3}), gb(Shape{3}), c(Shape{3}), gc(Shape{3});
  a.values = b.values = c.values = {0.5f, -1.0f, 2.0f};
  ga.values = gb.values = gc.values = {0.1f, -0.2f, 0.3f};
  std::vector<Parameter> params = {{"a", a.view(), ga.view(), "mlp", true},
                                   {"b", b.view(), gb.view(), "mlp", true, 0.25f},
                                   {"c", c.view(), gc.view(), "norm", false, 0.0f}};
  AdamW adam(*ops, params, AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
  adam.step(0.01);
  for (size_t i = 0; i < 3; ++i) {
    AdamRef full, quarter;
    const double x0 = i == 0 ? 0.5 : i == 1 ? -1.0 : 2.0;
    EXPECT_NEAR(a.values[i], full.step(x0, ga.values[i], 0.01, 0.1, 1), 2e-7);
    EXPECT_NEAR(b.values[i], quarter.step(x0, gb.values[i], 0.0025, 0.1, 1), 2e-7);
    EXPECT_EQ(c.values[i], static_cast<float>(x0));
  }
}

std::string temp_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(getpid()) + ".safetensors")).string();
}

// The optimiser split across ranks (ZeRO-1), all ranks in one process on the same parameters:
// the parts cover every element once, each rank's range is contiguous and as long as the others
// within one; the parts' updates together equal the whole optimiser's, bit for bit; the parts two
// ranks saved load into three ranks (and a whole file into parts) and go on as the whole one does.
TEST(AdamW, ShardedAcrossRanksEqualsTheWholeOptimiserAndReshards) {
  auto ops = make_cpu_ops();
  HostTensor a(Shape{2, 3}), ga(Shape{2, 3}), b(Shape{5}), gb(Shape{5});
  std::vector<Parameter> params = {{"a", a.view(), ga.view(), "mlp", true}, {"b", b.view(), gb.view(), "norm", false}};
  for (int ranks : {1, 2, 3, 4, 11}) {
    const std::vector<ParamPart> parts = shard_parts(params, ranks);
    std::vector<int64_t> per_rank(static_cast<size_t>(ranks), 0), covered(2, 0);
    for (const ParamPart& p : parts) {
      per_rank[static_cast<size_t>(p.owner)] += p.end - p.begin;
      covered[p.param] += p.end - p.begin;
      EXPECT_LT(p.begin, p.end);
    }
    EXPECT_EQ(covered[0], 6);
    EXPECT_EQ(covered[1], 5);
    const auto [lo, hi] = std::minmax_element(per_rank.begin(), per_rank.end());
    EXPECT_LE(*hi - *lo, 1) << ranks << " ranks";
  }
  const std::vector<float> a0 = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, -0.75f}, b0 = {1.0f, -2.0f, 0.125f, 3.0f, -0.5f};
  const std::vector<std::vector<float>> gas = {{0.1f, -0.2f, 0.3f, 1.5f, -0.01f, 0.0f},
                                               {-0.3f, 0.2f, 0.1f, 0.5f, 0.02f, 0.7f},
                                               {0.05f, 0.4f, -0.6f, 0.2f, 0.3f, -0.1f}};
  const std::vector<std::vector<float>> gbs = {
      {2.0f, -0.5f, 0.25f, 0.1f, 0.0f}, {1.0f, 0.5f, -0.25f, -0.2f, 0.3f}, {0.5f, 0.25f, 1.0f, 0.4f, -0.7f}};
  const AdamWOptions opt{0.9f, 0.95f, 1e-8f, 0.1f};
  auto set = [&](HostTensor& value, HostTensor& grad, const std::vector<float>& v, const std::vector<float>& g) {
    value.values = v;
    grad.values = g;
  };
  // The whole optimiser, three steps; the values after each.
  std::vector<std::vector<float>> want;
  set(a, ga, a0, gas[0]);
  set(b, gb, b0, gbs[0]);
  {
    AdamW whole(*ops, params, opt);
    for (int t = 0; t < 3; ++t) {
      ga.values = gas[static_cast<size_t>(t)];
      gb.values = gbs[static_cast<size_t>(t)];
      whole.step(0.01);
      std::vector<float> v = a.values;
      v.insert(v.end(), b.values.begin(), b.values.end());
      want.push_back(v);
    }
  }
  auto values = [&] {
    std::vector<float> v = a.values;
    v.insert(v.end(), b.values.begin(), b.values.end());
    return v;
  };
  // Two ranks, two steps, then their parts saved.
  a.values = a0;
  b.values = b0;
  const std::string p0 = temp_path("adam_part0"),
                    p1 = temp_path("adam_part1");
  {
    AdamW r0(*ops, params, opt, OptimShard{0, 2}), r1(*ops, params, opt, OptimShard{1, 2});
    EXPECT_EQ(r0.moment_bytes() + r1.moment_bytes(), 2 * 11 * sizeof(float));
    for (int t = 0; t < 2; ++t) {
      ga.values = gas[static_cast<size_t>(t)];
      gb.values = gbs[static_cast<size_t>(t)];
      r0.step(0.01);
      r1.step(0.01);
      EXPECT_EQ(values(), want[static_cast<size_t>(t)]) << "step " << t + 1;
    }
    SafetensorsWriter w0, w1;
    r0.save(w0);
    r1.save(w1);
    w0.write(p0);
    w1.write(p1);
  }
  const std::vector<float> after2 = values();
  const auto f0 = SafetensorsFile::open(p0), f1 = SafetensorsFile::open(p1);
  // Three ranks resume from the two parts and take the third step.
  {
    std::vector<std::unique_ptr<AdamW>> three;
    for (int r = 0; r < 3; ++r) {
      three.push_back(std::make_unique<AdamW>(*ops, params, opt, OptimShard{r, 3}));
      three.back()->load({f0.get(), f1.get()});
      three.back()->set_steps(2);
    }
    ga.values = gas[2];
    gb.values = gbs[2];
    for (auto& r : three) r->step(0.01);
    EXPECT_EQ(values(), want[2]);
  }
  // One part alone does not cover rank 0 of 1.
  {
    AdamW one(*ops, params, opt);
    try {
      one.load({f1.get()});
      ADD_FAILURE() << "loaded from half of the parts";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p1), std::string::npos) << e.what();
    }
  }
  // A whole file (one rank's checkpoint) loads into parts.
  a.values.assign(after2.begin(), after2.begin() + 6);
  b.values.assign(after2.begin() + 6, after2.end());
  const std::string pw = temp_path("adam_whole");
  {
    AdamW r0(*ops, params, opt, OptimShard{0, 2}), r1(*ops, params, opt, OptimShard{1, 2});
    r0.load({f0.get(), f1.get()});
    r1.load({f0.get(), f1.get()});
    AdamW whole(*ops, params, opt);
    whole.load({f0.get(), f1.get()});
    SafetensorsWriter w;
    whole.save(w);
    w.write(pw);
  }
  const auto fw = SafetensorsFile::open(pw);
  EXPECT_TRUE(fw->find("adamw.m/a") && fw->find("adamw.v/b"));
  {
    AdamW r0(*ops, params, opt, OptimShard{0, 2}), r1(*ops, params, opt, OptimShard{1, 2});
    r0.load({fw.get()});
    r1.load({fw.get()});
    r0.set_steps(2);
    r1.set_steps(2);
    ga.values = gas[2];
    gb.values = gbs[2];
    r0.step(0.01);
    r1.step(0.01);
    EXPECT_EQ(values(), want[2]);
  }
  for (const std::string& f : {p0, p1, pw}) std::filesystem::remove(f);
}

TEST(AdamW, TwoStepsByHandReference) { adamw_two_steps(*make_reference_ops()); }
TEST(AdamW, TwoStepsByHandCpu) { adamw_two_steps(*make_cpu_ops()); }

TEST(Clip, GlobalNormOverAllParameters) {
  auto ops = make_reference_ops();
  HostTensor v1(Shape{2}), g1(Shape{2}), v2(Shape{1}), g2(Shape{1});
  std::vector<Parameter> params = {{"x", v1.view(), g1.view(), "mlp", true}, {"y", v2.view(), g2.view(), "norm", false}};
  g1.values = {3.0f, 4.0f};
  g2.values = {12.0f};
  EXPECT_NEAR(clip_grad_norm(*ops, params, 20.0), 13.0, 1e-6);
  EXPECT_EQ(g1.values[1], 4.0f);  // under the limit: untouched
  EXPECT_NEAR(clip_grad_norm(*ops, params, 6.5), 13.0, 1e-6);
  EXPECT_NEAR(g1.values[0], 1.5f, 1e-6);
  EXPECT_NEAR(g1.values[1], 2.0f, 1e-6);
  EXPECT_NEAR(g2.values[0], 6.0f, 1e-6);
  EXPECT_NEAR(global_grad_norm(*ops, params), 6.5, 1e-6);
  EXPECT_NEAR(clip_grad_norm(*ops, params, 0.0), 6.5, 1e-6);  // 0: no limit
  EXPECT_NEAR(g2.values[0], 6.0f, 1e-6);
}

const char* kGood = R"([run]
out = "runs/x"
seed = 7
data = "data/d"

[[stage]]
name = "align"
kind = "align"
train = ["time_mix"]
tokens = 1_000
seq_len = 16
batch = 2
lr = 1e-3

[[stage]]
name = "kd"
kind = "kd"
train = ["time_mix", "mlp"]
tokens = 500
seq_len = 8
batch = 1
grad_accum = 4
lr = 5e-4
min_lr = 1e-5
warmup_tokens = 64
top_k = 20
temperature = 2
recompute = true
)";

TEST(Config, ParsesWithDefaults) {
  const TrainConfig c = parse_train_config(kGood, "good.toml");
  EXPECT_EQ(c.run.out, "runs/x");
  EXPECT_EQ(c.run.seed, 7u);
  EXPECT_EQ(c.run.backend, "cpu");
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].tokens, 1000);
  EXPECT_EQ(c.stages[0].grad_accum, 1);
  EXPECT_DOUBLE_EQ(c.stages[0].clip, 1.0);
  EXPECT_EQ(c.stages[0].total_steps(), 32);
  EXPECT_EQ(c.stages[1].train, (std::vector<std::string>{"time_mix", "mlp"}));
  EXPECT_DOUBLE_EQ(c.stages[1].temperature, 2.0);
  EXPECT_EQ(c.stages[1].warmup_steps(), 2);
  EXPECT_TRUE(c.stages[1].recompute);
  EXPECT_EQ(c.stages[1].total_steps(), 16);
}

// The error for kGood with `from` replaced by `to`.
std::string error_of(const std::string& from, const std::string& to) {
  std::string text = kGood;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  try {
    parse_train_config(text, "bad.toml");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << to;
  return "";
}

TEST(Config, ErrorsNameTheFileLineAndKey) {
  std::string e = error_of("batch = 2\n", "batch = 2\nbatchsize = 3\n");
  EXPECT_NE(e.find("bad.toml:13:"), std::string::npos) << e;
  EXPECT_NE(e.find("'batchsize'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  e = error_of("lr = 1e-3", "lr = \"fast\"");
  EXPECT_NE(e.find("bad.toml:13:"), std::string::npos) << e;
  EXPECT_NE(e.find("'lr'"), std::string::npos) << e;
  e = error_of("tokens = 1_000", "tokens = -5");
  EXPECT_NE(e.find("bad.toml:10:"), std::string::npos) << e;
  EXPECT_NE(e.find("'tokens'"), std::string::npos) << e;
  e = error_of("kind = \"align\"", "kind = \"alignn\"");
  EXPECT_NE(e.find("'kind'"), std::string::npos) << e;
  EXPECT_NE(e.find("alignn"), std::string::npos) << e;
  e = error_of("[\"time_mix\"]", "[\"time_mix\", \"mlps\"]");
  EXPECT_NE(e.find("'train'"), std::string::npos) << e;
  EXPECT_NE(e.find("mlps"), std::string::npos) << e;
  e = error_of("seed = 7", "seed = 7\nzero = 3");
  EXPECT_NE(e.find("'zero'"), std::string::npos) << e;
  EXPECT_NE(e.find("expected 0"), std::string::npos) << e;
  e = error_of("seed = 7", "seed = 7\ncomm = \"gloo\"");
  EXPECT_NE(e.find("'comm'"), std::string::npos) << e;
  EXPECT_NE(e.find("\"gloo\": expected \"auto\", \"mpi\" or \"nccl\""), std::string::npos) << e;
  e = error_of("seed = 7", "seed = 7\nsede = 8");
  EXPECT_NE(e.find("[run]"), std::string::npos) << e;
  EXPECT_NE(e.find("'sede'"), std::string::npos) << e;
  e = error_of("name = \"kd\"", "name = \"align\"");
  EXPECT_NE(e.find("'name'"), std::string::npos) << e;
  e = error_of("name = \"kd\"", "name = \"k/d\"");
  EXPECT_NE(e.find("'name'"), std::string::npos) << e;
  e = error_of("lr = 5e-4", "lr = 5e-4\nwarmup = 3");
  EXPECT_NE(e.find("warmup"), std::string::npos) << e;
  e = error_of("recompute = true", "recompute = 1");
  EXPECT_NE(e.find("'recompute'"), std::string::npos) << e;
  e = error_of("seq_len = 16\n", "seq_len = 16\n  = 3\n");
  EXPECT_NE(e.find("bad.toml:12:"), std::string::npos) << e;  // a TOML syntax error, with its line
  e = error_of("[[stage]]\nname = \"align\"", "[[stage]]\nlabel = \"x\"");
  EXPECT_NE(e.find("missing key 'name'"), std::string::npos) << e;
}

TEST(Config, LrScalePerTrainedGroup) {
  std::string text = kGood;
  text.replace(text.find("lr = 5e-4"), 9, "lr = 5e-4\nlr_scale = { mlp = 0.1, time_mix = 2 }");
  const TrainConfig c = parse_train_config(text, "good.toml");
  EXPECT_DOUBLE_EQ(c.stages[1].lr_scale_of("mlp"), 0.1);
  EXPECT_DOUBLE_EQ(c.stages[1].lr_scale_of("time_mix"), 2.0);
  EXPECT_DOUBLE_EQ(c.stages[0].lr_scale_of("time_mix"), 1.0);
  std::string e = error_of("lr = 5e-4", "lr = 5e-4\nlr_scale = { head = 0.5 }");
  EXPECT_NE(e.find("'lr_scale'"), std::string::npos) << e;
  EXPECT_NE(e.find("'head' is not a group the stage trains"), std::string::npos) << e;
  e = error_of("lr = 5e-4", "lr = 5e-4\nlr_scale = { mlp = -1 }");
  EXPECT_NE(e.find("not a number ≥ 0"), std::string::npos) << e;
  e = error_of("lr = 5e-4", "lr = 5e-4\nlr_scale = 0.5");
  EXPECT_NE(e.find("expected a table"), std::string::npos) << e;
}

TEST(Config, MissingFileNamesIt) {
  try {
    load_train_config("/nonexistent/run.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/run.toml"), std::string::npos);
  }
}

}  // namespace
