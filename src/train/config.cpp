// Reading the distillation config (config.h) with toml++: every table goes through a TableReader
// that checks each key's type and remembers which keys it read, so what is left over is an error.
#include "train/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "backend/ops.h"
#include "core/error.h"
#include "train/objective.h"

namespace arwkv {
namespace {

class TableReader {
 public:
  TableReader(const toml::table& t, std::string source, std::string where)
      : t_(t), source_(std::move(source)), where_(std::move(where)) {}

  [[noreturn]] void bad(const std::string& key, const std::string& problem) const {
    const toml::node* n = t_.get(key);
    const auto line = n ? n->source().begin.line : t_.source().begin.line;
    fail("{}:{}: {} key '{}': {}", source_, line, where_, key, problem);
  }

  const toml::node* node(const std::string& key, bool required) {
    used_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n && required) fail("{}:{}: {} is missing key '{}'", source_, t_.source().begin.line, where_, key);
    return n;
  }

  void str(const std::string& key, std::string& out, bool required = false) {
    if (const toml::node* n = node(key, required)) {
      if (!n->is_string()) bad(key, "expected a string");
      out = n->as_string()->get();
    }
  }
  void integer(const std::string& key, int64_t& out, bool required = false, int64_t min = 0) {
    if (const toml::node* n = node(key, required)) {
      if (!n->is_integer()) bad(key, "expected an integer");
      out = n->as_integer()->get();
      if (out < min) bad(key, fmt::format("{} is below the least allowed value {}", out, min));
    }
  }
  void number(const std::string& key, double& out, bool required = false, double min = 0.0) {
    if (const toml::node* n = node(key, required)) {
      if (n->is_integer()) out = static_cast<double>(n->as_integer()->get());
      else if (n->is_floating_point()) out = n->as_floating_point()->get();
      else bad(key, "expected a number");
      if (!std::isfinite(out) || out < min) bad(key, fmt::format("{} is not a number ≥ {}", out, min));
    }
  }
  void boolean(const std::string& key, bool& out) {
    if (const toml::node* n = node(key, false)) {
      if (!n->is_boolean()) bad(key, "expected true or false");
      out = n->as_boolean()->get();
    }
  }
  void strings(const std::string& key, std::vector<std::string>& out, bool required = false) {
    if (const toml::node* n = node(key, required)) {
      const toml::array* a = n->as_array();
      if (!a) bad(key, "expected a list of strings");
      out.clear();
      for (const toml::node& e : *a) {
        if (!e.is_string()) bad(key, "expected a list of strings");
        out.push_back(e.as_string()->get());
      }
    }
  }
  // A table of numbers ≥ 0 under string keys, e.g. lr_scale = { mlp = 0.1 }.
  void number_table(const std::string& key, std::map<std::string, double>& out) {
    if (const toml::node* n = node(key, false)) {
      const toml::table* t = n->as_table();
      if (!t) bad(key, "expected a table of numbers, e.g. { mlp = 0.1 }");
      for (auto&& [k, v] : *t) {
        double x = 0.0;
        if (v.is_integer()) x = static_cast<double>(v.as_integer()->get());
        else if (v.is_floating_point()) x = v.as_floating_point()->get();
        else bad(key, fmt::format("'{}' is not a number", k.str()));
        if (!std::isfinite(x) || x < 0.0) bad(key, fmt::format("'{}' = {} is not a number ≥ 0", k.str(), x));
        out[std::string(k.str())] = x;
      }
    }
  }
  void no_other_keys() const {
    for (auto&& [k, v] : t_)
      if (!used_.count(std::string(k.str())))
        fail("{}:{}: {} has unknown key '{}'", source_, v.source().begin.line, where_, k.str());
  }
  bool has(const std::string& key) const { return t_.contains(key); }

 private:
  const toml::table& t_;
  std::string source_, where_;
  std::set<std::string> used_;
};

bool valid_stage_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s != "checkpoints" &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.';
         });
}

RunConfig read_run(const toml::table& t, const std::string& source) {
  TableReader r(t, source, "[run]");
  RunConfig run;
  int64_t seed = 0, threads = 0;
  r.str("out", run.out, true);
  r.integer("seed", seed);
  r.str("student", run.student);
  r.str("teacher", run.teacher);
  r.str("data", run.data);
  r.integer("threads", threads);
  r.str("backend", run.backend);
  r.integer("log_every", run.log_every, false, 1);
  r.integer("keep_checkpoints", run.keep_checkpoints, false, 1);
  r.integer("max_bad_steps", run.max_bad_steps, false, 1);
  r.integer("zero", run.zero);
  r.str("comm", run.comm);
  r.no_other_keys();
  if (run.comm != "auto" && run.comm != "mpi" && run.comm != "nccl")
    r.bad("comm", fmt::format("\"{}\": expected \"auto\", \"mpi\" or \"nccl\"", run.comm));
  if (run.zero > 2)
    r.bad("zero", fmt::format("{}: expected 0 (every rank holds the whole optimiser), 1 (the optimiser sharded) or 2 "
                              "(the optimiser sharded and each gradient part summed on its owner only)",
                              run.zero));
  if (run.out.empty()) r.bad("out", "must not be empty");
  const std::vector<std::string>& names = backend_names();
  if (std::find(names.begin(), names.end(), run.backend) == names.end())
    r.bad("backend", fmt::format("expected one of {}", fmt::join(names, ", ")));
  run.seed = static_cast<uint64_t>(seed);
  run.threads = static_cast<int>(threads);
  return run;
}

StageConfig read_stage(const toml::table& t, const std::string& source, size_t index) {
  TableReader r(t, source, fmt::format("[[stage]] {}", index + 1));
  StageConfig s;
  r.str("name", s.name, true);
  r.str("kind", s.kind, true);
  r.strings("train", s.train, true);
  r.integer("tokens", s.tokens, true, 1);
  r.integer("seq_len", s.seq_len, true, 1);
  r.integer("batch", s.batch, true, 1);
  r.integer("grad_accum", s.grad_accum, false, 1);
  r.number("lr", s.lr, true);
  r.number("min_lr", s.min_lr);
  r.integer("warmup", s.warmup);
  r.integer("warmup_tokens", s.warmup_tokens);
  r.number("weight_decay", s.weight_decay);
  r.number("clip", s.clip);
  r.number_table("lr_scale", s.lr_scale);
  r.integer("eval_every", s.eval_every);
  r.integer("eval_batches", s.eval_batches, false, 1);
  r.integer("checkpoint_every", s.checkpoint_every);
  r.str("data", s.data);
  r.number("temperature", s.temperature);
  r.integer("top_k", s.top_k);
  r.number("ce_weight", s.ce_weight);
  r.str("kd_teacher", s.kd_teacher);
  r.number("beta", s.beta);
  r.boolean("recompute", s.recompute);
  r.str("frozen_dtype", s.frozen_dtype);
  r.no_other_keys();
  if (!valid_stage_name(s.name)) r.bad("name", fmt::format("'{}' is not a name of letters, digits, _ - .", s.name));
  if (!has_objective(s.kind) && s.kind != "align" && s.kind != "kd" && s.kind != "sft" && s.kind != "dpo")
    r.bad("kind", fmt::format("unknown kind '{}' (align, kd, sft or dpo)", s.kind));
  if (s.train.empty()) r.bad("train", "names no parameter group");
  for (const std::string& g : s.train)
    if (!is_parameter_group(g))
      r.bad("train", fmt::format("unknown group '{}' (time_mix, attention, mlp, norm, embedding, head)", g));
  for (const auto& [g, x] : s.lr_scale)
    if (!s.trains(g)) r.bad("lr_scale", fmt::format("'{}' is not a group the stage trains", g));
  if (s.min_lr > s.lr) r.bad("min_lr", fmt::format("{} exceeds lr {}", s.min_lr, s.lr));
  if (r.has("warmup") && r.has("warmup_tokens")) r.bad("warmup_tokens", "give warmup or warmup_tokens, not both");
  if (s.temperature <= 0.0) r.bad("temperature", "must be positive");
  if (s.frozen_dtype != "stored" && s.frozen_dtype != "f32" && s.frozen_dtype != "bf16" && s.frozen_dtype != "f16")
    r.bad("frozen_dtype", fmt::format("'{}' is not stored, f32, bf16 or f16", s.frozen_dtype));
  if (!(s.beta > 0.0 && s.beta <= 1e3)) r.bad("beta", "must be in (0, 1000]");
  if (s.kind == "dpo" && s.batch % 2 != 0) r.bad("batch", fmt::format("dpo rows come in pairs: {} is odd", s.batch));
  // Far beyond any run, and far enough from overflow for the step counts derived from them.
  constexpr int64_t kMaxTokens = int64_t{1} << 50, kMaxStepTokens = int64_t{1} << 40;
  int64_t per_step = 0;
  if (__builtin_mul_overflow(s.batch, s.seq_len, &per_step) ||
      __builtin_mul_overflow(per_step, s.grad_accum, &per_step) || per_step > kMaxStepTokens)
    r.bad("batch", fmt::format("batch {} × seq_len {} × grad_accum {} tokens a step is more than 2^40", s.batch,
                               s.seq_len, s.grad_accum));
  if (s.tokens > kMaxTokens) r.bad("tokens", "more than 2^50 tokens");
  if (s.warmup_tokens > kMaxTokens) r.bad("warmup_tokens", "more than 2^50 tokens");
  return s;
}

}  // namespace

int64_t StageConfig::total_steps() const {
  const int64_t per = tokens_per_step();
  return std::max<int64_t>(1, (tokens + per - 1) / per);
}

int64_t StageConfig::warmup_steps() const {
  if (warmup_tokens > 0) return (warmup_tokens + tokens_per_step() - 1) / tokens_per_step();
  return warmup;
}

bool StageConfig::trains(const std::string& group) const {
  return std::find(train.begin(), train.end(), group) != train.end();
}

double StageConfig::lr_scale_of(const std::string& group) const {
  const auto it = lr_scale.find(group);
  return it == lr_scale.end() ? 1.0 : it->second;
}

TrainConfig parse_train_config(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail("{}:{}: {}", source, e.source().begin.line, e.description());
  }
  TrainConfig c;
  c.path = source;
  c.text = text;
  for (auto&& [k, v] : root)
    if (k.str() != "run" && k.str() != "stage")
      fail("{}:{}: unknown top-level key '{}' (expected [run] and [[stage]])", source, v.source().begin.line,
           k.str());
  const toml::table* run = root["run"].as_table();
  if (!run) fail("{}: missing the [run] table", source);
  c.run = read_run(*run, source);
  const toml::array* stages = root["stage"].as_array();
  if (!stages || stages->empty()) fail("{}: no [[stage]] tables", source);
  std::set<std::string> names;
  for (size_t i = 0; i < stages->size(); ++i) {
    const toml::table* t = (*stages)[i].as_table();
    if (!t) fail("{}: 'stage' must be an array of tables ([[stage]])", source);
    c.stages.push_back(read_stage(*t, source, i));
    if (!names.insert(c.stages.back().name).second)
      fail("{}:{}: [[stage]] {} key 'name': '{}' is used by an earlier stage", source, t->source().begin.line, i + 1,
           c.stages.back().name);
    if (c.stages.back().data.empty() && c.run.data.empty())
      fail("{}: [[stage]] {} has no data: set [run] data or the stage's data", source, i + 1);
  }
  return c;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the config file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_train_config(ss.str(), path);
}

}  // namespace arwkv
