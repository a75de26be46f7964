// arwkv convert --teacher T --out DIR: a Llama/Qwen2 teacher → an RWKV-7 student checkpoint
// directory (SPEC §3 "Initialisation", §5). Options map one to one onto ConvertOptions.
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "convert/convert.h"
#include "core/error.h"
#include "train/calibrate.h"

namespace arwkv::cli {

namespace {

struct ConvertCliOptions {
  std::string teacher, out, init = "transfer", keep_attention, lora_ranks, dtype = "f32", calibrate;
  bool no_gate = false, group_norm = false, force = false;
  uint64_t seed = 0;
  int64_t calibrate_tokens = 8192;
};

ConvertOptions to_options(const ConvertCliOptions& c) {
  ConvertOptions o;
  o.teacher = c.teacher;
  o.out = c.out;
  o.init = c.init == "arwkv" ? InitKind::Arwkv : InitKind::Transfer;
  if (!c.keep_attention.empty()) o.keep_attention = parse_int_list(c.keep_attention, "--keep-attention", c.teacher);
  o.gate = !c.no_gate;
  o.group_norm = c.group_norm;
  if (!c.lora_ranks.empty()) {
    const std::vector<int> r = parse_int_list(c.lora_ranks, "--lora-ranks", c.teacher);
    if (r.size() != 4 && !(r.size() == 3 && c.no_gate))
      fail("{}: --lora-ranks '{}' needs four ranks W,A,V,G (three with --no-gate)", c.teacher, c.lora_ranks);
    o.lora_ranks = LoraRanks{r[0], r[1], r[2], r.size() == 4 ? r[3] : 0};
  }
  o.seed = c.seed;
  o.dtype = c.dtype == "bf16" ? DType::BF16 : c.dtype == "f16" ? DType::F16 : DType::F32;
  o.force = c.force;
  return o;
}

void print_calibration(const CalibrateReport& r) {
  double before = 0, after = 0, silent = 0;
  for (size_t j = 0; j < r.layers.size(); ++j) before += r.before[j], after += r.after[j], silent += r.silent[j];
  const double n = static_cast<double>(std::max<size_t>(r.layers.size(), 1));
  fmt::print("calibrated   output scales per head from {} tokens: mean ‖A_teacher − A_student‖²/C {:.4g} -> {:.4g} "
             "(silent block: {:.4g})\n",
             r.tokens, before / n, after / n, silent / n);
}

void run_convert(const ConvertCliOptions& c) {
  if (!c.calibrate.empty() && c.dtype != "f32")
    fail("{}: --calibrate writes f32 weights; convert with --dtype f32 (the default)", c.teacher);
  ConvertOptions opt = to_options(c);
  // With calibration the student is made in a sibling directory and renamed when it is calibrated.
  namespace fs = std::filesystem;
  const std::string work = c.calibrate.empty() ? c.out : c.out + ".calibrating";
  if (!c.calibrate.empty()) {
    if (fs::exists(c.out) && !fs::is_empty(c.out) && !c.force)
      fail("{}: exists and is not empty (--force replaces it)", c.out);
    fs::remove_all(work);
    opt.out = work;
  }
  const ConvertReport r = convert_teacher(opt);
  const StudentConfig& s = r.config;
  fmt::print("student      {}\n", c.out);
  fmt::print("init         {} (seed {})\n", c.init, c.seed);
  fmt::print("time-mix     {} of {} layers, {} heads of {}, gate {}, group norm {}\n", s.wkv_layers.size(),
             s.base.n_layers, s.n_wkv_heads(), s.head_size, s.has_gate ? "yes" : "no", s.has_group_norm ? "yes" : "no");
  fmt::print("LoRA ranks   decay {}, iclr {}, value {}, gate {}\n", s.decay_lora, s.iclr_lora, s.value_lora, s.gate_lora);
  fmt::print("tensors      {} ({:.1f} M parameters, stored {})\n", r.n_tensors, r.n_parameters / 1e6, c.dtype);
  fmt::print("tokenizer    {}\n", r.tokenizer);
  if (!c.calibrate.empty()) {
    CalibrateOptions co;
    co.student = r.out;
    co.teacher = c.teacher;
    co.data = c.calibrate;
    co.tokens = c.calibrate_tokens;
    co.seed = c.seed;
    try {
      print_calibration(calibrate_student(co));
    } catch (...) {
      fs::remove_all(work);
      throw;
    }
    fs::remove_all(c.out);
    fs::rename(work, c.out);
  }
}

}  // namespace

void add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertCliOptions>();
  CLI::App* cmd = app.add_subcommand("convert", "Turn a Transformer teacher into an RWKV-7 student checkpoint");
  cmd->add_option("--teacher", o->teacher, "Teacher: HF directory, .safetensors file or .gguf file")->required();
  cmd->add_option("--out", o->out, "Student checkpoint directory to write")->required();
  cmd->add_option("--init", o->init, "transfer: r/k/v/o from q/k/v/o (RADLADS); arwkv: fresh r/k/v/o (paper)")
      ->check(CLI::IsMember({"transfer", "arwkv"}))
      ->capture_default_str();
  cmd->add_option("--keep-attention", o->keep_attention, "Comma-separated layers that keep softmax attention");
  cmd->add_flag("--no-gate", o->no_gate, "No output gate (g1/g2)");
  cmd->add_flag("--group-norm", o->group_norm, "GroupNorm on the WKV output (ln_x)");
  cmd->add_option("--lora-ranks", o->lora_ranks,
                  "W,A,V,G LoRA ranks (default: size formula for transfer, 64,64,32,128 for arwkv)");
  cmd->add_option("--seed", o->seed, "Seed of the random initialisation")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Stored weight type")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd->add_option("--calibrate", o->calibrate,
                  "Tokenized data (arwkv data): scale each time-mix head's output to its attention's by least squares");
  cmd->add_option("--calibrate-tokens", o->calibrate_tokens, "Tokens of --calibrate data to fit on")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--force", o->force, "Replace an existing non-empty output directory");
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace arwkv::cli
