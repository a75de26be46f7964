// The optimiser side of a training step (SPEC §4): the learning-rate schedule, the global gradient
// norm and clipping, and AdamW (β 0.9 / 0.95, decoupled weight decay only on parameters marked
// decay) with its moment state per parameter on the parameters' backend.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/ops.h"
#include "train/objective.h"

namespace arwkv {

class SafetensorsFile;
class SafetensorsWriter;

// Linear warmup then cosine decay over the stage's real length. For step s = 1 .. total:
//   s ≤ warmup:  lr·s / warmup
//   otherwise:   min_lr + (lr − min_lr)·(1 + cos(π·(s − warmup) / (total − warmup))) / 2
// so the last step runs at min_lr. Steps past total stay at min_lr.
struct LrSchedule {
  double lr = 0.0, min_lr = 0.0;
  int64_t warmup = 0, total = 1;
  double at(int64_t step) const;
};

// √(Σ over the parameters of Σ grad²), one download.
double global_grad_norm(Ops& ops, const std::vector<Parameter>& params);
// grad ← grad·s for every parameter.
void scale_grads(Ops& ops, const std::vector<Parameter>& params, float s);
// Scales the gradients so their global norm is at most max_norm (max_norm ≤ 0: no limit) and
// returns the norm before clipping.
double clip_grad_norm(Ops& ops, const std::vector<Parameter>& params, double max_norm);

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.0f;  // applied to parameters with decay set
};

class AdamW {
 public:
  AdamW(Ops& ops, std::vector<Parameter> params, const AdamWOptions& opt);

  // One update of every parameter from its gradient at learning rate lr × its lr_scale.
  void step(double lr);
  int64_t steps() const { return step_; }
  const std::vector<Parameter>& parameters() const { return params_; }

  // The moments as "adamw.m/<name>" and "adamw.v/<name>" (fp32, read when the writer writes, so it
  // must not outlive this optimiser); load checks names and shapes and
  // throws naming the file. The step count travels separately (set_steps).
  void save(SafetensorsWriter& w) const;
  void load(const SafetensorsFile& f);
  void set_steps(int64_t s) { step_ = s; }

 private:
  struct Moments {
    Buffer m_buf, v_buf;
    Tensor m, v;
  };
  Ops& ops_;
  std::vector<Parameter> params_;
  std::vector<Moments> moments_;
  AdamWOptions opt_;
  int64_t step_ = 0;
};

}  // namespace arwkv
