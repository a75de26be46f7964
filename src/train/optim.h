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

// The optimiser's state split across the ranks of a data-parallel run (ZeRO stage 1): the
// parameters' elements, flattened in order, are cut into `ranks` contiguous ranges of nearly
// equal length; rank r keeps the moments of, and updates, only the elements of range r. After a
// step every part is broadcast from its owner. ranks = 1: one part per parameter, all owned.
struct OptimShard {
  int rank = 0, ranks = 1;
};

// Elements [begin, end) of params[param], owned by rank owner.
struct ParamPart {
  size_t param = 0;
  int64_t begin = 0, end = 0;
  int owner = 0;
};
// Every rank's parts, in parameter order (parts of one parameter by owner).
std::vector<ParamPart> shard_parts(const std::vector<Parameter>& params, int ranks);
// The flat f32 view of elements [begin, end) of a tensor.
Tensor flat_range(const Tensor& t, int64_t begin, int64_t end);

class AdamW {
 public:
  AdamW(Ops& ops, std::vector<Parameter> params, const AdamWOptions& opt, const OptimShard& shard = {});

  // One update of this rank's parts of every parameter from its gradient at learning rate
  // lr × its lr_scale.
  void step(double lr);
  int64_t steps() const { return step_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  const std::vector<ParamPart>& parts() const { return parts_; }  // every rank's
  const OptimShard& shard() const { return shard_; }
  uint64_t moment_bytes() const;  // held by this rank

  // The moments of this rank's parts, read when the writer writes (so it must not outlive this
  // optimiser), fp32: with one rank as "adamw.m/<name>" and "adamw.v/<name>" of the parameter's
  // shape; with several, each part as "adamw.m/<name>@<begin>" of shape [end − begin].
  void save(SafetensorsWriter& w) const;
  // From the files of any sharding (one whole file, or the parts every rank of a run with another
  // number of ranks wrote): each part is assembled from whatever covers it. Throws naming the file
  // for a missing name, a wrong shape, or elements no file covers. The step count travels
  // separately (set_steps).
  void load(const std::vector<const SafetensorsFile*>& files);
  void set_steps(int64_t s) { step_ = s; }

 private:
  struct Moments {
    size_t part = 0;  // index into parts_
    Buffer m_buf, v_buf;
    Tensor m, v;
  };
  Ops& ops_;
  std::vector<Parameter> params_;
  std::vector<ParamPart> parts_;
  std::vector<Moments> moments_;  // this rank's parts
  AdamWOptions opt_;
  OptimShard shard_;
  int64_t step_ = 0;
};

}  // namespace arwkv
