// The distillation config (`arwkv distill CONFIG.toml`): one [run] table and the stages, run in
// order, as [[stage]] tables. Paths are taken as written (relative ones from the working directory).
//
//   [run]
//   out = "runs/qwen-0.5b"        # required: checkpoints, metrics.jsonl, curves.png, out/<stage>/
//   seed = 0                       # data order and the run's random stream derive from it
//   student = "students/qwen"      # the converted student the first stage starts from
//   teacher = "models/Qwen2.5-0.5B-Instruct"
//   data = "data/fineweb"          # tokenized data directory (`arwkv data`)
//   threads = 0                    # OpenMP threads; 0 = the default
//   backend = "cpu"                # "cpu", "cuda" (a GPU), "reference" or "cuda-emulated" (tests)
//   log_every = 10                 # a progress line every this many steps
//   keep_checkpoints = 2           # older training checkpoints are deleted
//   max_bad_steps = 5              # a step whose loss or gradient norm is NaN/Inf changes nothing
//                                  # (logged as "skip"); this many in a row stop the run
//   zero = 1                       # under mpirun: 1 shards AdamW's moments across the ranks
//                                  # (ZeRO-1), 0 keeps the whole optimiser on every rank, 2 also
//                                  # sums each gradient part on its owner only (reduce, not
//                                  # all-reduce: half the bytes; the gradient buffers stay whole)
//   comm = "auto"                  # how gradients and parameters travel between ranks: "mpi"
//                                  # (host memory), "nccl" (GPU to GPU; the cuda backend in a build
//                                  # with NCCL; also on one rank, to check the path on one GPU) or
//                                  # "auto" (nccl where both are there, mpi otherwise)
//
//   [[stage]]
//   name = "align"                 # [A-Za-z0-9_.-]+, unique: names out/<name>/ and its checkpoints
//   kind = "align"                 # align | kd | sft | dpo (or a kind registered by a test)
//   train = ["time_mix"]           # groups: time_mix attention mlp norm embedding head
//   tokens = 20_000_000            # token budget: steps = ceil(tokens / (batch·seq_len·grad_accum))
//   seq_len = 512
//   batch = 4
//   grad_accum = 1                 # micro-batches per optimiser step
//   lr = 1e-3
//   min_lr = 1e-5                  # the cosine decay ends here at the stage's last step
//   warmup = 50                    # steps of linear warmup (or warmup_tokens = N, not both)
//   weight_decay = 0.0             # on matrices only
//   lr_scale = { mlp = 0.1 }       # per trained group: its learning rate is lr (and min_lr) × this
//   clip = 1.0                     # global gradient-norm limit; 0 = none
//   eval_every = 100               # validation every this many steps (and at the end); 0 = end only
//   eval_batches = 4               # fixed batches from the start of the val split
//   checkpoint_every = 200         # and at the stage end; 0 = end only
//   data = "data/chat"             # optional: this stage's data instead of [run] data
//   temperature = 2.0              # kd: τ
//   top_k = 0                      # kd: teacher top-k (0 = full vocabulary)
//   ce_weight = 0.0                # kd: α of the added next-token cross-entropy
//   kd_teacher = ""                # kd: another teacher sharing the tokenizer
//   beta = 0.1                     # dpo: β, the scale of the log-ratio margin (data: `arwkv pairs`;
//                                  # batch counts rows: batch/2 pairs a micro-batch)
//   recompute = false              # recompute activations in backward instead of keeping them
//   frozen_dtype = "stored"        # the student's matrices that do not train: as the checkpoint
//                                  # stores them (a bf16 one stays bf16), or "f32", "bf16", "f16"
//
// Unknown keys, wrong types and bad values throw arwkv::Error naming the file, the line, the
// table and the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace arwkv {

struct StageConfig {
  std::string name, kind;
  std::vector<std::string> train;  // parameter groups
  int64_t tokens = 0;
  int64_t seq_len = 0, batch = 0, grad_accum = 1;
  double lr = 0.0, min_lr = 0.0;
  int64_t warmup = 0, warmup_tokens = 0;  // at most one is set
  double weight_decay = 0.0, clip = 1.0;
  std::map<std::string, double> lr_scale;  // group → multiplier of the schedule (default 1)
  int64_t eval_every = 0, eval_batches = 4, checkpoint_every = 0;
  std::string data;  // empty: the run's
  double temperature = 1.0;
  int64_t top_k = 0;
  double ce_weight = 0.0;
  std::string kd_teacher;
  double beta = 0.1;
  bool recompute = false;
  std::string frozen_dtype = "stored";

  int64_t tokens_per_step() const { return batch * seq_len * grad_accum; }
  int64_t total_steps() const;  // the stage's real length: ceil(tokens / tokens_per_step), ≥ 1
  int64_t warmup_steps() const;
  bool trains(const std::string& group) const;
  double lr_scale_of(const std::string& group) const;
};

struct RunConfig {
  std::string out, student, teacher, data;
  uint64_t seed = 0;
  int threads = 0;
  std::string backend = "cpu";
  int64_t log_every = 10;
  int64_t keep_checkpoints = 2;
  int64_t max_bad_steps = 5;
  int64_t zero = 1;  // data parallel: 0 replicates AdamW, 1 shards its moments (ZeRO-1), 2 also reduces gradients to their owners
  std::string comm = "auto";  // the tensors' transport between ranks: auto, mpi or nccl
};

struct TrainConfig {
  std::string path;  // the file it came from
  std::string text;  // its contents (copied into checkpoints)
  RunConfig run;
  std::vector<StageConfig> stages;
};

// Throws arwkv::Error naming the file (and line, table, key) for any problem.
TrainConfig load_train_config(const std::string& path);
TrainConfig parse_train_config(const std::string& text, const std::string& source);

}  // namespace arwkv
