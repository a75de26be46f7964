// arwkv export -m STUDENT --to gguf|hf OUT: a student for llama.cpp (an arwkv7 GGUF file) or as an HF
// directory in the released ARWKV layout (src/export/*.h describe both).
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "export/gguf_export.h"
#include "export/hf_export.h"
#include "model/student/student_checkpoint.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv::cli {

namespace {

struct ExportOptions {
  std::string model, to, out, type = "f32", dtype = "f32";
  bool force = false;
};

GgmlType gguf_type(const std::string& t) {
  return t == "q8_0" ? GgmlType::Q8_0 : t == "f16" ? GgmlType::F16 : GgmlType::F32;
}

void run_gguf(const ExportOptions& o) {
  const std::unique_ptr<StudentCheckpoint> ck = StudentCheckpoint::open(o.model);
  if (ck->tokenizer_json_path().empty()) fail("{}: the student has no tokenizer.json; the GGUF needs one", o.model);
  const TokenizerData tok = load_tokenizer_json(ck->tokenizer_json_path());
  const GgufExportReport r = export_student_gguf(*ck, tok, o.out, gguf_type(o.type));
  fmt::print("gguf         {} (arwkv7, {})\n", r.out, o.type);
  fmt::print("tensors      {}\n", r.n_tensors);
  fmt::print("tokenizer    {} tokens, pre {}\n", r.n_tokens, r.pre);
  fmt::print("size         {:.1f} MB\n", r.bytes / 1e6);
}

void run_hf(const ExportOptions& o) {
  const DType dt = o.dtype == "bf16" ? DType::BF16 : o.dtype == "f16" ? DType::F16 : DType::F32;
  const HfExportReport r = export_student_hf(o.model, o.out, dt, o.force);
  fmt::print("hf           {} ({})\n", r.out, o.dtype);
  fmt::print("tensors      {}{}\n", r.n_tensors, r.added_lm_head ? " (lm_head.weight: a copy of the tied embedding)" : "");
  if (!r.converter_warning.empty()) fmt::print("note         {}\n", r.converter_warning);
}

}  // namespace

void add_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Write a student for llama.cpp (GGUF arwkv7) or as an HF directory");
  cmd->add_option("-m,--model", o->model, "Student checkpoint directory (for --to hf also an arwkv7 .gguf)")->required();
  cmd->add_option("--to", o->to, "gguf: one file for llama.cpp; hf: a directory for transformers/convert_hf_to_gguf.py")
      ->check(CLI::IsMember({"gguf", "hf"}))
      ->required();
  cmd->add_option("out", o->out, "Output .gguf file or directory")->required();
  cmd->add_option("--type", o->type, "GGUF type of the large matrices (norms, mixes and LoRA stay f32)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "HF safetensors dtype")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd->add_flag("--force", o->force, "Replace an existing non-empty HF output directory");
  cmd->callback([o] { o->to == "gguf" ? run_gguf(*o) : run_hf(*o); });
}

}  // namespace arwkv::cli
