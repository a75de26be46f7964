// The stage runner (trainer.h).
#include "train/trainer.h"

#include <fmt/format.h>
#include <omp.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>

#include "core/error.h"
#include "dist/comm.h"
#include "train/curves.h"
#include "train/metrics.h"
#include "train/objective.h"
#include "train/optim.h"
#include "train/train_checkpoint.h"

namespace arwkv {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Rows [first, last) of a B-row batch that rank r of n takes: whole groups of `group` rows (a dpo
// pair), as evenly as they divide (the stage refuses a batch that leaves a rank none).
std::pair<int64_t, int64_t> rank_rows(int64_t B, int64_t group, int r, int n) {
  const int64_t units = B / group;
  return {units * r / n * group, units * (r + 1) / n * group};
}

// The batch a rank trains or validates on: the whole batch on a single process, else its rows.
const Batch& share_of(const Batch& batch, int64_t group, const Comm& comm, Batch& scratch) {
  if (!comm.distributed()) return batch;
  const auto [b0, b1] = rank_rows(batch.B, group, comm.rank(), comm.size());
  batch_rows(batch, b0, b1, scratch);
  return scratch;
}

// The mean loss (and kl / top1) over eval_batches fixed batches from the start of the val split,
// weighted by each batch's count; nothing when the data has no val split. Each rank measures its
// rows of every batch and the weighted sums are added over the ranks.
std::optional<ValidationResult> validate(Objective& obj, const Dataset& data, const StageConfig& st, Comm& comm) {
  if (data.n_documents(DataSplit::Val) == 0) return std::nullopt;
  BatchIterator it(data, DataSplit::Val, BatchOptions{st.batch, st.seq_len, 0, false});
  Batch batch, mine;
  // Weighted sums added over the ranks, and whether any batch had a kl and a top1.
  enum { kCount, kLoss, kKl, kTop1, kHasKl, kHasTop1, kSums };
  std::array<double, kSums> sum{};
  for (int64_t i = 0; i < st.eval_batches; ++i) {
    it.next(batch);
    const Batch& b = share_of(batch, obj.row_group(), comm, mine);
    const auto c = static_cast<double>(obj.count(b));
    if (c == 0) continue;
    const ValidationResult r = obj.validate(b);
    sum[kCount] += c;
    sum[kLoss] += c * r.loss;
    if (r.kl) {
      sum[kHasKl] = 1;
      sum[kKl] += c * *r.kl;
    }
    if (r.top1) {
      sum[kHasTop1] = 1;
      sum[kTop1] += c * *r.top1;
    }
  }
  comm.allreduce_sum(sum.data(), kSums);
  const double n = sum[kCount];
  if (n == 0) return std::nullopt;
  ValidationResult r{sum[kLoss] / n, std::nullopt, std::nullopt};
  if (sum[kHasKl] > 0) r.kl = sum[kKl] / n;
  if (sum[kHasTop1] > 0) r.top1 = sum[kTop1] / n;
  return r;
}

class StageRunner {
 public:
  // log: rank 0's metrics (nullptr on the other ranks of a data-parallel run).
  StageRunner(const TrainConfig& cfg, const TrainerOptions& opt, const std::string& out, int index, Ops& ops,
              MetricsLog* log, Comm& comm)
      : cfg_(cfg), st_(cfg.stages[static_cast<size_t>(index)]), opt_(opt), out_(out), index_(index), ops_(ops),
        log_(log), comm_(comm), data_(Dataset::open(st_.data.empty() ? cfg.run.data : st_.data)) {
    steps_ = opt.max_steps > 0 ? std::min(opt.max_steps, st_.total_steps()) : st_.total_steps();
    schedule_ = LrSchedule{st_.lr, st_.min_lr, std::min(st_.warmup_steps(), steps_), steps_};
  }

  void run(const std::optional<LatestCheckpoint>& resume);

 private:
  double train_step(BatchIterator& it, Batch& batch);
  void skip_step(const StepRecord& r);
  void validate_and_log();
  void checkpoint();
  void write_student();
  void progress(const StepRecord& r, double eta_s, uint64_t sent) const;
  void log(const nlohmann::json& record) {
    if (log_) log_->write(record);
  }
  bool prints() const { return opt_.progress && comm_.rank() == 0; }
  void update(double lr);
  double clip();
  bool reduce_to_owners() const { return comm_.distributed() && cfg_.run.zero >= 2; }

  const TrainConfig& cfg_;
  const StageConfig& st_;
  const TrainerOptions& opt_;
  std::string out_;
  int index_;
  Ops& ops_;
  MetricsLog* log_;
  Comm& comm_;
  Dataset data_;
  int64_t steps_ = 1;
  LrSchedule schedule_;
  TrainRng rng_;
  std::unique_ptr<Objective> obj_;
  std::vector<Parameter> params_;
  std::unique_ptr<AdamW> adam_;
  TrainState state_;
  std::unique_ptr<BatchIterator> it_;
  Batch mine_;                // this rank's rows of the current batch (data parallel)
  int64_t bad_in_a_row_ = 0;  // consecutive steps skipped for a non-finite loss or gradient norm
};

void StageRunner::run(const std::optional<LatestCheckpoint>& resume) {
  const uint64_t seed = stage_seed(cfg_.run.seed, index_);
  rng_.set_state(seed);
  RunContext ctx{&cfg_.run, index_, "", &data_, &ops_, &rng_};
  ctx.student_path = index_ == 0 ? cfg_.run.student : (fs::path(out_) / cfg_.stages[index_ - 1].name).string();
  obj_ = make_objective(st_.kind, st_, ctx);
  for (Parameter p : obj_->parameters())
    if (st_.trains(p.group)) {
      p.lr_scale = static_cast<float>(st_.lr_scale_of(p.group));
      params_.push_back(p);
    }
  if (params_.empty()) fail("{}: stage '{}' trains no parameter of its objective", cfg_.path, st_.name);
  if (st_.batch / obj_->row_group() < comm_.size())
    fail("{}: stage '{}': batch {} gives {} ranks less than {} row{} each; use a batch of at least {}", cfg_.path,
         st_.name, st_.batch, comm_.size(), obj_->row_group(), obj_->row_group() == 1 ? "" : "s",
         comm_.size() * obj_->row_group());
  const OptimShard shard = cfg_.run.zero >= 1 ? OptimShard{comm_.rank(), comm_.size()} : OptimShard{};
  adam_ = std::make_unique<AdamW>(ops_, params_, AdamWOptions{0.9f, 0.95f, 1e-8f, static_cast<float>(st_.weight_decay)},
                                  shard);
  {  // what each rank holds of the optimiser, measured from its buffers
    double held[2] = {static_cast<double>(adam_->moment_bytes()), 0.0};
    held[1] = held[0];
    comm_.allreduce_sum(&held[1], 1);
    if (prints())
      fmt::print(stderr, "[{}] optimiser moments: {:.1f} MiB on rank 0{}\n", st_.name, held[0] / (1 << 20),
                 comm_.distributed() ? fmt::format(", {:.1f} MiB over the {} ranks", held[1] / (1 << 20), comm_.size())
                                     : std::string());
  }
  state_.stage_index = index_;
  state_.stage = st_.name;
  if (resume) {
    state_ = resume->state;
    load_train_checkpoint(resume->dir, params_, ops_, *adam_);
    adam_->set_steps(state_.step);
    rng_.set_state(state_.rng);
    if (prints()) fmt::print(stderr, "[{}] resuming at step {} from {}\n", st_.name, state_.step, resume->dir);
  }
  it_ = std::make_unique<BatchIterator>(data_, DataSplit::Train, BatchOptions{st_.batch, st_.seq_len, seed, true},
                                        state_.cursor);
  Batch batch;
  const auto t0 = Clock::now();
  const int64_t first_step = state_.step;
  const double seconds0 = state_.seconds;
  while (state_.step < steps_) {
    const auto ts = Clock::now();
    StepRecord r{index_, st_.name, state_.step + 1, steps_, state_.tokens + st_.tokens_per_step()};
    r.lr = schedule_.at(r.step);
    r.loss = train_step(*it_, batch);
    r.grad_norm = clip();
    const bool bad = !std::isfinite(r.loss) || !std::isfinite(r.grad_norm);
    if (bad) {
      skip_step(r);
    } else {
      update(r.lr);
      bad_in_a_row_ = 0;
    }
    ops_.synchronize();
    const double dt = seconds_since(ts);
    r.tokens_per_s = static_cast<double>(st_.tokens_per_step()) / std::max(dt, 1e-9);
    state_.step = r.step;
    state_.tokens = r.tokens;
    state_.cursor = it_->cursor();
    state_.seconds = seconds0 + seconds_since(t0);
    const uint64_t sent = comm_.take_bytes_sent();
    if (!bad) {
      nlohmann::json rec = {{"type", "train"},  {"stage", st_.name},      {"stage_index", index_},
                            {"step", r.step},   {"steps", steps_},        {"tokens", r.tokens},
                            {"loss", r.loss},   {"lr", r.lr},             {"grad_norm", r.grad_norm},
                            {"tokens_per_s", r.tokens_per_s}, {"seconds", state_.seconds}};
      if (comm_.distributed()) {
        rec["ranks"] = comm_.size();
        rec["comm_bytes"] = sent;  // what rank 0 sent in this step's collectives
      }
      log(rec);
    }
    if (opt_.on_step) opt_.on_step(r);
    const double per_step = seconds_since(t0) / static_cast<double>(state_.step - first_step);
    if (prints() && (r.step % cfg_.run.log_every == 0 || r.step == steps_))
      progress(r, per_step * static_cast<double>(steps_ - r.step), sent);
    const bool last = state_.step == steps_;
    if (last || (st_.eval_every > 0 && state_.step % st_.eval_every == 0)) validate_and_log();
    if (!last && st_.checkpoint_every > 0 && state_.step % st_.checkpoint_every == 0) checkpoint();
  }
  write_student();
  state_.stage_complete = true;
  checkpoint();
}

// One optimiser step's gradients: the micro-batches' mean gradients weighted by their counts,
// kept as a running weighted mean (scaled before and after each forward_backward). A batch with
// nothing to count (e.g. chat windows without an assistant token) is passed over for the next one.
// Returns the count-weighted mean loss. On a data-parallel run every rank reads the same batches
// and runs its rows of each; its running mean is over its own counts, scaled by its share of the
// step's count, and the ranks' gradients and losses are added.
double StageRunner::train_step(BatchIterator& it, Batch& batch) {
  constexpr int kMaxEmpty = 1000;
  obj_->zero_grad();
  double total = 0.0, loss = 0.0;  // this rank's count and count-weighted loss
  double step_count = 0.0;         // the whole step's count (every rank's)
  for (int64_t a = 0; a < st_.grad_accum; ++a) {
    double whole = 0;
    for (int empty = 0; whole == 0; ++empty) {
      if (empty == kMaxEmpty)
        fail("{}: stage '{}': {} batches in a row have no target to train on (does the data's mask mark any "
             "token within seq_len {}?)",
             cfg_.path, st_.name, kMaxEmpty, st_.seq_len);
      it.next(batch);
      whole = static_cast<double>(obj_->count(batch));
    }
    step_count += whole;
    const Batch& b = share_of(batch, obj_->row_group(), comm_, mine_);
    const double n = comm_.distributed() ? static_cast<double>(obj_->count(b)) : whole;
    if (n == 0) continue;  // this rank's rows have nothing to count; the others' do
    if (total > 0) scale_grads(ops_, params_, static_cast<float>(total / n));
    const double l = obj_->forward_backward(b);
    if (total > 0) scale_grads(ops_, params_, static_cast<float>(n / (total + n)));
    loss += n * l;
    total += n;
  }
  if (!comm_.reduces()) return loss / total;
  if (total > 0) scale_grads(ops_, params_, static_cast<float>(total / step_count));
  if (reduce_to_owners()) {  // zero = 2: each part's sum only where its optimiser update runs
    for (const ParamPart& part : adam_->parts())
      comm_.reduce_sum(ops_, flat_range(params_[part.param].grad, part.begin, part.end), part.owner);
  } else {
    for (const Parameter& p : params_) comm_.allreduce_sum(ops_, p.grad);
  }
  comm_.allreduce_sum(&loss, 1);
  return loss / step_count;
}

// The global gradient norm, and the gradients clipped to st_.clip. With zero = 2 a rank holds the
// summed gradient of its own parts only: their squares are added over the ranks, and each rank
// scales its parts.
double StageRunner::clip() {
  if (!reduce_to_owners()) return clip_grad_norm(ops_, params_, st_.clip);
  Buffer buf = ops_.alloc(sizeof(float));
  const Tensor acc{buf.data(), Shape{1}, DType::F32, ops_.device()};
  const float zero = 0.0f;
  ops_.upload(acc, &zero);
  std::vector<Tensor> mine;
  for (const ParamPart& part : adam_->parts())
    if (part.owner == comm_.rank()) mine.push_back(flat_range(params_[part.param].grad, part.begin, part.end));
  for (const Tensor& g : mine) ops_.sum_squares(acc, g);
  float local = 0.0f;
  ops_.download(&local, acc);
  double squares = local;
  comm_.allreduce_sum(&squares, 1);
  const double norm = std::sqrt(squares);
  if (st_.clip > 0.0 && norm > st_.clip)
    for (const Tensor& g : mine) ops_.scale(g, static_cast<float>(st_.clip / norm));
  return norm;
}

// AdamW on this rank's parts (all of them on a single process or with zero = 0), then every part
// from its owner to the other ranks.
void StageRunner::update(double lr) {
  adam_->step(lr);
  if (!comm_.reduces() || adam_->shard().ranks == 1) return;
  for (const ParamPart& part : adam_->parts())
    comm_.broadcast(ops_, flat_range(params_[part.param].value, part.begin, part.end), part.owner);
}

// A step whose loss or gradient norm is not finite leaves the parameters and the optimiser's
// moments as they were; its batch is consumed (the data order does not depend on it) and the
// optimiser's step count moves on, as a resumed run's would. max_bad_steps in a row stop the run
// before anything is written: the last checkpoint stays what it was.
void StageRunner::skip_step(const StepRecord& r) {
  adam_->set_steps(r.step);
  ++bad_in_a_row_;
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(fmt::format("{}", x)); };
  log({{"type", "skip"}, {"stage", st_.name}, {"stage_index", index_}, {"step", r.step}, {"tokens", r.tokens},
       {"loss", num(r.loss)}, {"grad_norm", num(r.grad_norm)}, {"in_a_row", bad_in_a_row_}});
  if (prints())
    fmt::print(stderr, "[{}] step {}: loss {} |g| {}: not finite, step skipped ({} in a row)\n", st_.name, r.step,
               r.loss, r.grad_norm, bad_in_a_row_);
  if (bad_in_a_row_ >= cfg_.run.max_bad_steps)
    fail("{}: stage '{}': {} steps in a row (to step {}) had a non-finite loss or gradient norm (last: loss {}, "
         "|g| {}); stopped without writing a checkpoint, the last one in {} is intact (max_bad_steps = {})",
         cfg_.path, st_.name, bad_in_a_row_, r.step, r.loss, r.grad_norm, out_, cfg_.run.max_bad_steps);
}

void StageRunner::validate_and_log() {
  const std::optional<ValidationResult> v = validate(*obj_, data_, st_, comm_);
  if (!v || !log_) return;
  nlohmann::json rec = {{"type", "val"},          {"stage", st_.name},     {"stage_index", index_},
                        {"step", state_.step},    {"tokens", state_.tokens}, {"loss", v->loss}};
  if (v->kl) rec["kl"] = *v->kl;
  if (v->top1) rec["top1"] = *v->top1;
  log(rec);
  if (prints())
    fmt::print(stderr, "[{}] step {} validation loss {:.4f}{}{}\n", st_.name, state_.step, v->loss,
               v->kl ? fmt::format(" kl {:.4f}", *v->kl) : "", v->top1 ? fmt::format(" top1 {:.3f}", *v->top1) : "");
  draw_curves(log_->path(), (fs::path(out_) / "curves.png").string());
}

void StageRunner::checkpoint() {
  state_.rng = rng_.state();
  state_.metrics_bytes = log_ ? log_->bytes() : 0;  // rank 0 writes state.json
  write_train_checkpoint(out_, state_, params_, ops_, *adam_, cfg_.text, cfg_.run.keep_checkpoints, comm_);
}

// out/<stage>/ appears whole: the objective writes into a temporary sibling that is renamed.
// Rank 0 writes it (every rank holds the same parameters); the others wait for it.
void StageRunner::write_student() {
  if (comm_.rank() != 0) {
    comm_.barrier();
    return;
  }
  const fs::path dir = fs::path(out_) / st_.name, tmp = fs::path(out_) / (".tmp-" + st_.name);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  obj_->save_student(tmp.string());
  fs::remove_all(dir);
  fs::rename(tmp, dir);
  if (prints()) fmt::print(stderr, "[{}] wrote {}\n", st_.name, dir.string());
  comm_.barrier();
}

// sent: the bytes rank 0 sent in the step's collectives (shown on a data-parallel run).
void StageRunner::progress(const StepRecord& r, double eta_s, uint64_t sent) const {
  fmt::print(stderr, "[{}] step {}/{} ({:.0f}%) tokens {} loss {:.4f} lr {:.2e} |g| {:.3f} {} tok/s{} ETA {}\n",
             r.stage, r.step, r.steps, 100.0 * static_cast<double>(r.step) / static_cast<double>(r.steps),
             human_count(static_cast<double>(r.tokens)), r.loss, r.lr, r.grad_norm, human_count(r.tokens_per_s),
             comm_.distributed() ? fmt::format(" sent {:.1f} MB", static_cast<double>(sent) / 1e6) : std::string(),
             human_duration(eta_s));
}

}  // namespace

uint64_t stage_seed(uint64_t run_seed, int stage_index) {
  TrainRng r(run_seed ^ (0xd1b54a32d192ed03ULL * static_cast<uint64_t>(stage_index + 1)));
  return r.next_u64();
}

void run_training(const TrainConfig& config, const TrainerOptions& opt) {
  const std::string out = opt.out.empty() ? config.run.out : opt.out;
  if (config.run.threads > 0) omp_set_num_threads(config.run.threads);
  std::unique_ptr<Ops> ops = make_ops(config.run.backend);  // first: no backend, no output directory
  Comm& comm = world();
  const char* transport = comm.set_transport(config.run.comm, *ops, config.path);
  const bool lead = comm.rank() == 0;  // prints, logs, draws and writes what is not the optimiser's
  if (lead) {
    fs::create_directories(out);
    remove_partial_checkpoints(out);
  }
  comm.barrier();
  const std::optional<LatestCheckpoint> latest = find_latest_checkpoint(out);
  size_t first = 0;
  if (latest) {
    const TrainState& s = latest->state;
    if (s.stage_index < 0 || static_cast<size_t>(s.stage_index) >= config.stages.size() ||
        config.stages[static_cast<size_t>(s.stage_index)].name != s.stage)
      fail("{}: the checkpoint {} is of stage {} '{}', which this config does not have at that place", config.path,
           latest->dir, s.stage_index + 1, s.stage);
    first = static_cast<size_t>(s.stage_index) + (s.stage_complete ? 1 : 0);
  }
  if (lead && opt.progress && comm.reduces())
    fmt::print(stderr, "distill: {} rank{}, {} thread{} each, optimiser {}, tensors through {}\n", comm.size(),
               comm.size() == 1 ? "" : "s", omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s",
               config.run.zero >= 1 ? fmt::format("sharded (zero = {})", config.run.zero) : "on every rank", transport);
  std::optional<MetricsLog> log;
  if (lead) log.emplace((fs::path(out) / "metrics.jsonl").string(), latest ? latest->state.metrics_bytes : 0);
  for (size_t i = first; i < config.stages.size(); ++i) {
    const bool resume = latest && !latest->state.stage_complete && i == first;
    StageRunner runner(config, opt, out, static_cast<int>(i), *ops, log ? &*log : nullptr, comm);
    runner.run(resume ? latest : std::nullopt);
  }
  if (lead) draw_curves(log->path(), (fs::path(out) / "curves.png").string());
}

}  // namespace arwkv
