// arwkv distill: run the stages of a distillation config (train/config.h), resuming from the
// run's latest checkpoint when there is one.
#include <fmt/format.h>

#include "backend/ops.h"
#include "cli/commands.h"
#include "dist/comm.h"
#include "train/config.h"
#include "train/objective.h"
#include "train/trainer.h"

namespace arwkv::cli {

namespace {

struct DistillCli {
  std::string config, backend;
  TrainerOptions opt;
};

void run_distill(const DistillCli& o) {
  const bool lead = world().rank() == 0;  // under mpirun: this process's rank (MPI starts here)
  register_builtin_objectives();
  TrainConfig config = load_train_config(o.config);
  if (!o.backend.empty()) config.run.backend = o.backend;
  const std::string out = o.opt.out.empty() ? config.run.out : o.opt.out;
  if (lead)
    fmt::print(stderr, "distill: {} stage{} into {}\n", config.stages.size(), config.stages.size() == 1 ? "" : "s",
               out);
  run_training(config, o.opt);
  if (lead) fmt::print(stderr, "distill: done; metrics in {0}/metrics.jsonl, curves in {0}/curves.png\n", out);
}

}  // namespace

void add_distill(CLI::App& app) {
  auto o = std::make_shared<DistillCli>();
  CLI::App* cmd = app.add_subcommand("distill", "Distil a teacher into the student: run the stages of a TOML config");
  cmd->add_option("config", o->config, "The run's config (TOML: [run] and [[stage]] tables)")->required();
  cmd->add_option("--out", o->opt.out, "Output directory (replaces the config's [run] out)");
  cmd->add_option("--backend", o->backend, "Where to train: cpu or cuda (replaces the config's [run] backend)")
      ->check(CLI::IsMember(backend_names()));
  cmd->add_option("--max-steps", o->opt.max_steps, "Stop each stage after this many steps (for tests)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([o] { run_distill(*o); });
}

}  // namespace arwkv::cli
