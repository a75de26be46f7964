// Training checkpoints (SPEC §4): out/checkpoints/<stage>-<step>/ holding
//   params.safetensors     the stage's trained parameters (fp32, under Parameter::name)
//   optimizer.safetensors  AdamW's moments (optim.h); a run of N ranks with a sharded optimiser
//                          writes optimizer-R-of-N.safetensors, rank R's parts, instead
//   state.json             where the run stands (TrainState below)
//   config.toml            a copy of the config the run was started with
// Each is written into a temporary sibling directory that is renamed into place once complete;
// then out/latest (one line: the checkpoint's path relative to out) is replaced atomically. A
// kill at any moment leaves either the previous checkpoint or the new one as latest, never a
// half-written one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "dist/comm.h"
#include "train/objective.h"
#include "train/optim.h"

namespace arwkv {

struct TrainState {
  int stage_index = 0;
  std::string stage;
  int64_t step = 0;    // optimiser steps done in the stage
  int64_t tokens = 0;  // training tokens consumed in the stage
  bool stage_complete = false;  // the stage's student directory is written
  DataCursor cursor;            // where the stage's next training batch begins
  uint64_t rng = 0;             // TrainRng state
  uint64_t metrics_bytes = 0;   // length of metrics.jsonl when the checkpoint was taken
  double seconds = 0.0;         // training time in the stage so far

  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j, const std::string& source);
};

// Writes the checkpoint, points out/latest at it and deletes all but the newest `keep`
// checkpoints. Returns the checkpoint directory. Every rank of a run calls it: rank 0 makes the
// temporary directory, each rank writes its optimiser part, rank 0 the rest and the rename.
std::string write_train_checkpoint(const std::string& out, const TrainState& state,
                                   const std::vector<Parameter>& params, Ops& ops, const AdamW& adam,
                                   const std::string& config_text, int64_t keep, Comm& comm);

// The checkpoint out/latest points at, if any (throws naming the file when it is unreadable).
struct LatestCheckpoint {
  std::string dir;
  TrainState state;
};
std::optional<LatestCheckpoint> find_latest_checkpoint(const std::string& out);

// Restores the parameters and the optimiser (this rank's parts, from the optimiser files of any
// number of ranks) from a checkpoint directory; throws naming the file for a missing tensor or
// another shape.
// The optimiser's step count is the state's step (set by the caller).
void load_train_checkpoint(const std::string& dir, const std::vector<Parameter>& params, Ops& ops, AdamW& adam);

// Removes temporary directories a killed run left under out/checkpoints.
void remove_partial_checkpoints(const std::string& out);

}  // namespace arwkv
