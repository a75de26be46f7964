// What a distillation stage trains: an Objective owns a model's trainable parameters (and whatever
// else it needs: a teacher, caches, scratch), computes a loss and its gradients for a batch, and
// validates. The stage runner (trainer.h) is the same for every kind of stage; the kinds (align, kd,
// sft, ...) register a factory under their name and the runner builds one per stage.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace arwkv {

struct RunConfig;
struct StageConfig;

// One trainable tensor. value and grad are views of the same shape on the objective's backend;
// grad accumulates (forward_backward adds to it). group is one of kParameterGroups; decay says
// whether weight decay applies (matrices: true; vectors, norms, mixes: false).
struct Parameter {
  std::string name;  // unique, stable: the key in training checkpoints (e.g. the HF tensor name)
  Tensor value;
  Tensor grad;
  std::string group;
  bool decay = false;
  float lr_scale = 1.0f;  // the optimiser's rate for this tensor is the schedule's × lr_scale
};

inline constexpr const char* kParameterGroups[] = {"time_mix", "attention", "mlp", "norm", "embedding", "head"};
bool is_parameter_group(const std::string& group);

// A validation measure over one batch. kl and top1 are filled by objectives that compare with a
// teacher (align leaves top1 empty, sft both).
struct ValidationResult {
  double loss = 0.0;
  std::optional<double> kl;    // mean KL(teacher ‖ student) per counted target
  std::optional<double> top1;  // fraction of counted targets where the argmaxes agree
};

// A counter-based random stream (splitmix64) whose whole state is one integer, so a checkpoint
// can save and restore it exactly. Objectives that need randomness draw from RunContext::rng.
class TrainRng {
 public:
  explicit TrainRng(uint64_t state = 0) : state_(state) {}
  uint64_t next_u64();
  double next_uniform();  // [0, 1)
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

// What a stage's objective gets besides its StageConfig.
struct RunContext {
  const RunConfig* run = nullptr;
  int stage_index = 0;
  // The student this stage starts from: the run's student for the first stage, the previous
  // stage's output directory (out/<stage>/) for later ones. Parameters restored from a training
  // checkpoint overwrite the loaded values afterwards.
  std::string student_path;
  const Dataset* data = nullptr;  // the stage's training data (the val split is used to validate)
  Ops* ops = nullptr;             // the backend every Parameter lives on
  TrainRng* rng = nullptr;        // saved in checkpoints
};

class Objective {
 public:
  virtual ~Objective() = default;

  // All parameters this objective computes gradients for, the same views on every call (valid for
  // the objective's life). The runner updates those whose group the stage trains.
  virtual std::vector<Parameter> parameters() = 0;

  // Adds the gradients of the mean loss over the batch's counted targets (count()) to every
  // Parameter::grad and returns that mean loss.
  virtual double forward_backward(const Batch& batch) = 0;

  // The loss (and kl / top1 where they apply) of one batch, without touching gradients.
  virtual ValidationResult validate(const Batch& batch) = 0;

  // The number of targets the mean of forward_backward is over; the runner weights micro-batches
  // by it when it accumulates gradients. Default: the batch's valid targets (Batch::target_valid).
  virtual int64_t count(const Batch& batch) const;

  // Rows that belong together and must go to the same rank of a data-parallel run (dpo: a pair).
  // count() and the loss are sums over such groups, so the ranks' shares add up to the batch's.
  virtual int64_t row_group() const { return 1; }

  // Sets every Parameter::grad to zero (default: uploads zeros into each one).
  virtual void zero_grad();

  // Writes the trained model as a full checkpoint directory into dir (which exists and is empty);
  // the runner calls it at the end of the stage and makes it appear atomically as out/<stage>/.
  virtual void save_student(const std::string& dir) = 0;

 protected:
  explicit Objective(Ops& ops) : ops_(&ops) {}
  Ops& ops() const { return *ops_; }

 private:
  Ops* ops_;
};

// Stage kinds. Each kind registers a factory under its name before the runner starts;
// register_builtin_objectives() (builtin_objectives.cpp) registers the program's kinds (align, kd,
// sft); tests register their own.
using ObjectiveFactory = std::function<std::unique_ptr<Objective>(const StageConfig&, const RunContext&)>;
void register_objective(const std::string& kind, ObjectiveFactory factory);
bool has_objective(const std::string& kind);
void register_builtin_objectives();
// Throws arwkv::Error naming the kind when nothing is registered under it.
std::unique_ptr<Objective> make_objective(const std::string& kind, const StageConfig& stage, const RunContext& ctx);

// The number of valid targets of a batch.
int64_t count_valid_targets(const Batch& batch);

}  // namespace arwkv
