// arwkv eval: perplexity of a model on held-out text and, given its teacher, how closely the model
// follows it (mean KL and top-1 agreement per token).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "eval/compare.h"
#include "formats/file_util.h"
#include "infer/loaded_model.h"
#include "train/curves.h"

namespace arwkv::cli {

namespace {

struct EvalCli {
  std::string model, teacher, json_out, plot, backend = "cpu";
  std::vector<std::string> texts;
  int64_t window = 512;
  int64_t max_tokens = 0;
  bool by_position = false;
  bool spread = false;
};

// The position buckets as JSON, a table on stdout (with --by-position) and a plot (with --plot).
void report_positions(const EvalCli& o, const EvalResult& r, nlohmann::json& j) {
  const bool compared = !o.teacher.empty();
  nlohmann::json rows = nlohmann::json::array();
  std::vector<PositionCurve> loss(compared ? 2 : 1);
  PositionCurve kl{"KL", {}, {}};
  loss[0].name = compared ? "student" : "model";
  if (compared) loss[1].name = "teacher";
  if (o.by_position)
    fmt::print("\n{:>13} {:>8} {:>10}{}\n", "context", "tokens", compared ? "student" : "loss",
               compared ? fmt::format(" {:>10} {:>8}", "teacher", "KL") : "");
  for (const PositionBucket& b : r.by_position) {
    nlohmann::json row = {{"first", b.first}, {"last", b.last}, {"tokens", b.tokens}, {"nll", b.nll}};
    const double centre = std::sqrt(static_cast<double>(b.first) * static_cast<double>(b.last));
    loss[0].context.push_back(centre);
    loss[0].value.push_back(b.nll);
    if (compared) {
      row["teacher_nll"] = b.teacher_nll;
      row["kl"] = b.kl;
      loss[1].context.push_back(centre);
      loss[1].value.push_back(b.teacher_nll);
      kl.context.push_back(centre);
      kl.value.push_back(b.kl);
    }
    rows.push_back(row);
    if (o.by_position)
      fmt::print("{:>13} {:>8} {:>10.4f}{}\n", fmt::format("{}-{}", b.first, b.last), b.tokens, b.nll,
                 compared ? fmt::format(" {:>10.4f} {:>8.4f}", b.teacher_nll, b.kl) : "");
  }
  j["by_position"] = rows;
  if (!o.plot.empty())
    draw_position_curves("held-out loss (nats) by context", loss, compared ? &kl : nullptr, o.plot);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open text file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void run_eval(const EvalCli& o) {
  LoadedModel m = LoadedModel::open(o.model, o.backend);
  std::vector<int32_t> ids;
  for (const std::string& path : o.texts) {
    std::vector<int32_t> part = m.tokenizer->encode_start(read_text(path), false);  // each file a document
    ids.insert(ids.end(), part.begin(), part.end());
  }
  EvalOptions opt;
  opt.window = o.window;
  opt.max_tokens = o.max_tokens;
  opt.spread = o.spread;
  if (m.tokenizer->add_bos()) opt.bos = m.tokenizer->bos_id();
  auto t0 = std::chrono::steady_clock::now();
  opt.progress = [t0](int64_t done, int64_t total) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double rate = done / std::max(s, 1e-9);
    std::fprintf(stderr, "\reval: %lld / %lld tokens, %.0f tok/s, ETA %.0f s   ", static_cast<long long>(done),
                 static_cast<long long>(total), rate, (total - done) / std::max(rate, 1e-9));
    std::fflush(stderr);
  };

  nlohmann::json j = {{"model", o.model}, {"texts", o.texts}, {"window", o.window}, {"spread", o.spread}};
  if (opt.bos >= 0) j["bos_first"] = true;  // every window read after a BOS
  EvalResult r;
  if (o.teacher.empty()) {
    r = evaluate(*m.model, ids, opt);
  } else {
    LoadedModel t = LoadedModel::open(o.teacher, o.backend);
    r = compare(*t.model, *m.model, ids, opt);
    j["teacher"] = o.teacher;
    j["teacher_perplexity"] = r.teacher_perplexity();
    j["mean_kl"] = r.mean_kl;
    j["top1_agreement"] = r.top1_agreement;
  }
  std::fputs("\n", stderr);
  j["tokens"] = r.tokens;
  j["perplexity"] = r.perplexity();
  fmt::print("tokens            {}\n", r.tokens);
  fmt::print("perplexity        {:.4f}\n", r.perplexity());
  if (!o.teacher.empty()) {
    fmt::print("teacher perplexity {:.4f}\n", r.teacher_perplexity());
    fmt::print("mean KL           {:.5f} nats\n", r.mean_kl);
    fmt::print("top-1 agreement   {:.4f}\n", r.top1_agreement);
  }
  report_positions(o, r, j);
  if (!o.json_out.empty()) {
    const std::string text = j.dump(1) + "\n";
    write_file_atomically(o.json_out, [&](std::FILE* f) { std::fputs(text.c_str(), f); });
  }
}

}  // namespace

void add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCli>();
  CLI::App* cmd = app.add_subcommand("eval", "Perplexity on held-out text; with --teacher, KL and top-1 agreement");
  cmd->add_option("-m,--model", o->model, "The model to evaluate (HF directory or .gguf)")->required();
  cmd->add_option("--backend", o->backend, "Where to run: cpu or cuda")->capture_default_str();
  cmd->add_option("--teacher", o->teacher, "Its teacher: adds teacher perplexity, mean KL and top-1 agreement");
  cmd->add_option("--text", o->texts, "Held-out text files (UTF-8)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--window", o->window, "Tokens per evaluated sequence")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Score at most this many tokens (0: all)")->capture_default_str();
  cmd->add_flag("--spread", o->spread,
                "With --max-tokens: whole windows spread evenly over the text instead of from its start");
  cmd->add_option("--json", o->json_out, "Also write the results to this JSON file");
  cmd->add_flag("--by-position", o->by_position,
                "Also print the loss (and KL) by tokens of context: 1, 2-3, 4-7, ... up to the window");
  cmd->add_option("--plot", o->plot, "Draw the loss (and KL) by tokens of context into this PNG file");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace arwkv::cli
