// Helpers of the training-loop tests: a toy Objective with an analytic gradient, a small data
// directory written by build_dataset, and a config for them.
//
// Toy model: per target position, s = Σ_d E[input, d]·w[d] + c and the loss is (s − y)² with
// y = (target mod 7) / 7, in training weighted by a random factor in [0.5, 1.5) drawn from the
// run's random stream (so resuming must restore it); E [V, D] is an "embedding" matrix (decay), w [D] the "head", c [1] a
// "norm" vector. Its gradients are written out by hand in double; parameters live in host memory
// (the reference and CPU backends work on host pointers).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "data/data_writer.h"
#include "formats/safetensors.h"
#include "model/test_data_util.h"
#include "train/config.h"
#include "train/objective.h"

namespace arwkv::test {

class ToyObjective final : public Objective {
 public:
  static constexpr int64_t kV = 64, kD = 5;

  ToyObjective(Ops& ops, uint64_t seed, TrainRng* rng = nullptr)
      : Objective(ops), rng_(rng), E_(Shape{kV, kD}), w_(Shape{kD}), c_(Shape{1}),
        dE_(Shape{kV, kD}), dw_(Shape{kD}), dc_(Shape{1}) {
    E_.values = random_vector(E_.values.size(), seed, -0.5f, 0.5f);
    w_.values = random_vector(w_.values.size(), seed + 1, -0.5f, 0.5f);
    c_.values = {0.1f};
  }

  std::vector<Parameter> parameters() override {
    return {{"toy.E", E_.view(), dE_.view(), "embedding", true},
            {"toy.w", w_.view(), dw_.view(), "head", false},
            {"toy.c", c_.view(), dc_.view(), "norm", false}};
  }

  // What poison(call) says for the n-th call of forward_backward (from 0): 0 nothing, 1 a NaN
  // loss, 2 an infinite gradient (with a finite loss).
  std::function<int(int64_t)> poison;

  double forward_backward(const Batch& batch) override {
    const double loss = run(batch, true);
    const int p = poison ? poison(calls_) : 0;
    ++calls_;
    if (p == 2) dc_.values[0] = std::numeric_limits<float>::infinity();
    return p == 1 ? std::numeric_limits<double>::quiet_NaN() : loss;
  }
  ValidationResult validate(const Batch& batch) override { return {run(batch, false), std::nullopt, std::nullopt}; }

  void save_student(const std::string& dir) override {
    SafetensorsWriter w;
    w.add("toy.E", E_);
    w.add("toy.w", w_);
    w.add("toy.c", c_);
    w.write(dir + "/model.safetensors");
  }

  // Starts from a student an earlier stage saved.
  void load(const std::string& dir) {
    const auto f = SafetensorsFile::open(dir + "/model.safetensors");
    E_ = f->load("toy.E");
    w_ = f->load("toy.w");
    c_ = f->load("toy.c");
  }

  double run(const Batch& batch, bool grad) {
    const double n = static_cast<double>(count_valid_targets(batch));
    if (n == 0) return 0.0;
    double loss = 0.0;
    for (int64_t b = 0; b < batch.B; ++b)
      for (int64_t t = 0; t < batch.T; ++t) {
        if (!batch.target_valid(b, t)) continue;
        const int64_t x = batch.input(b, t) % kV;
        const double y = static_cast<double>(batch.target(b, t) % 7) / 7.0;
        double s = c_.values[0];
        for (int64_t d = 0; d < kD; ++d) s += double{E_.values[x * kD + d]} * w_.values[d];
        const double k = grad && rng_ ? 0.5 + rng_->next_uniform() : 1.0;
        loss += k * (s - y) * (s - y);
        if (grad) add_grads(x, k * 2.0 * (s - y) / n);
      }
    return loss / n;
  }

 private:
  void add_grads(int64_t x, double g) {
    for (int64_t d = 0; d < kD; ++d) {
      dE_.values[x * kD + d] += static_cast<float>(g * w_.values[d]);
      dw_.values[d] += static_cast<float>(g * E_.values[x * kD + d]);
    }
    dc_.values[0] += static_cast<float>(g);
  }

  TrainRng* rng_;
  int64_t calls_ = 0;
  HostTensor E_, w_, c_, dE_, dw_, dc_;
};

// The poison of the "toy_poisoned" kind, and the last objective it made.
struct ToyPoison {
  std::function<int(int64_t)> poison;
  ToyObjective* last = nullptr;
};
inline ToyPoison& toy_poison() {
  static ToyPoison p;
  return p;
}

inline void register_toy_objective() {
  register_objective("toy", [](const StageConfig&, const RunContext& ctx) {
    auto toy = std::make_unique<ToyObjective>(*ctx.ops, 11, ctx.rng);
    if (ctx.stage_index > 0) toy->load(ctx.student_path);
    return toy;
  });
  register_objective("toy_poisoned", [](const StageConfig&, const RunContext& ctx) {
    auto toy = std::make_unique<ToyObjective>(*ctx.ops, 11, ctx.rng);
    if (ctx.stage_index > 0) toy->load(ctx.student_path);
    toy->poison = toy_poison().poison;
    toy_poison().last = toy.get();
    return toy;
  });
}

// A data directory of 40 short text documents with a validation split, under dir.
inline std::string write_toy_data(const TempDir& dir) {
  std::string jsonl;
  uint64_t r = 7;
  for (int i = 0; i < 40; ++i) {
    std::string text = "doc " + std::to_string(i) + ":";
    const int words = 3 + i % 9;
    for (int w = 0; w < words; ++w) {
      r = r * 6364136223846793005ULL + 1442695040888963407ULL;
      text += " w" + std::to_string((r >> 33) % 40);
    }
    jsonl += nlohmann::json{{"text", text}}.dump() + "\n";
  }
  DataOptions o;
  o.inputs = {dir.write("corpus.jsonl", jsonl)};
  o.out = (dir.path / "data").string();
  o.val_fraction = 0.15;
  o.seed = 3;
  o.threads = 1;  // no OpenMP pool: the tests fork
  build_dataset(tiny_chat_tokenizer(), o);
  return o.out;
}

// A run of two toy stages over the data; extra lines are appended to the first stage.
inline std::string toy_config(const std::string& out, const std::string& data, const std::string& stage_extra = "") {
  return "[run]\nout = \"" + out + "\"\nseed = 42\ndata = \"" + data +
         "\"\nbackend = \"reference\"\nlog_every = 1000\n\n"
         "[[stage]]\nname = \"first\"\nkind = \"toy\"\ntrain = [\"embedding\", \"head\", \"norm\"]\n"
         "tokens = 1800\nseq_len = 9\nbatch = 4\ngrad_accum = 2\nlr = 0.05\nmin_lr = 0.005\nwarmup = 3\n"
         "weight_decay = 0.1\nclip = 0.5\neval_every = 5\neval_batches = 2\ncheckpoint_every = 4\n" +
         stage_extra +
         "\n[[stage]]\nname = \"second\"\nkind = \"toy\"\ntrain = [\"head\"]\ntokens = 700\nseq_len = 13\n"
         "batch = 3\nlr = 0.02\nwarmup_tokens = 100\ncheckpoint_every = 3\n";
}

}  // namespace arwkv::test
