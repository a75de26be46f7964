// arwkv convert --teacher T --out DIR: a Llama/Qwen2 teacher → an RWKV-7 student checkpoint
// directory (SPEC §3 "Initialisation", §5). Options map one to one onto ConvertOptions.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "convert/convert.h"

namespace arwkv::cli {

namespace {

struct ConvertCliOptions {
  std::string teacher, out, init = "transfer", keep_attention, lora_ranks, dtype = "f32";
  bool no_gate = false, group_norm = false, force = false;
  uint64_t seed = 0;
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

void run_convert(const ConvertCliOptions& c) {
  const ConvertReport r = convert_teacher(to_options(c));
  const StudentConfig& s = r.config;
  fmt::print("student      {}\n", r.out);
  fmt::print("init         {} (seed {})\n", c.init, c.seed);
  fmt::print("time-mix     {} of {} layers, {} heads of {}, gate {}, group norm {}\n", s.wkv_layers.size(),
             s.base.n_layers, s.n_wkv_heads(), s.head_size, s.has_gate ? "yes" : "no", s.has_group_norm ? "yes" : "no");
  fmt::print("LoRA ranks   decay {}, iclr {}, value {}, gate {}\n", s.decay_lora, s.iclr_lora, s.value_lora, s.gate_lora);
  fmt::print("tensors      {} ({:.1f} M parameters, stored {})\n", r.n_tensors, r.n_parameters / 1e6, c.dtype);
  fmt::print("tokenizer    {}\n", r.tokenizer);
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
  cmd->add_flag("--force", o->force, "Replace an existing non-empty output directory");
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace arwkv::cli
