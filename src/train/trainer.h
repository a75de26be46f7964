// The stage runner (SPEC §4): runs a config's stages in order, each through the Objective its kind
// registered. Per optimiser step: grad_accum micro-batches of [batch, seq_len] from the stage's
// training split (a seeded order derived from the run seed and the stage index), each
// forward_backward weighted by its count of targets, global-norm clipping, AdamW at the scheduled
// learning rate. It logs a progress line and metrics.jsonl, validates every eval_every steps on
// fixed batches of the val split, draws out/curves.png, checkpoints every checkpoint_every steps,
// and at each stage end writes the trained student to out/<stage>/ and a final checkpoint.
//
// Resume: running the same config again finds out/latest and continues from it: the same
// parameters, optimiser moments, data position and random state, so the losses that follow are
// bit-identical to those of a run that never stopped (on the CPU backends).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "train/config.h"

namespace arwkv {

struct StepRecord {
  int stage_index = 0;
  std::string stage;
  int64_t step = 0, steps = 0;  // this step (from 1) and the stage's total
  int64_t tokens = 0;           // training tokens of the stage so far
  double loss = 0.0, lr = 0.0, grad_norm = 0.0, tokens_per_s = 0.0;
};

struct TrainerOptions {
  std::string out;        // non-empty: replaces the config's [run] out
  int64_t max_steps = 0;  // > 0: each stage stops after this many steps (its schedule spans them)
  bool progress = true;   // the progress line on stderr
  std::function<void(const StepRecord&)> on_step;  // after every optimiser step
};

// Throws arwkv::Error for bad data, a checkpoint that does not match the config, an unregistered
// kind, and what the objectives throw.
void run_training(const TrainConfig& config, const TrainerOptions& opt = {});

// The seed of a stage's data order and random stream.
uint64_t stage_seed(uint64_t run_seed, int stage_index);

}  // namespace arwkv
