// `arwkv export --to hf`: a student (a checkpoint directory, or an arwkv7 GGUF read back) → an HF
// directory in the layout of the released ARWKV checkpoints (RwkvHybridForCausalLM) that llama.cpp's
// convert_hf_to_gguf.py (class ARwkv7Model) converts:
//   - config.json: our student config (architectures, model_type rwkv_hybrid, num_hidden_layers,
//     hidden_size, intermediate_size, rms_norm_eps, head_size, wkv_version 7, wkv_has_gate, ...);
//   - model.safetensors: the student's tensors under their HF names
//     (model.layers.{i}.self_attn.time_mixer.*, which the converter reads as attention.*), plus
//     lm_head.weight (a copy of the embedding) when the embeddings are tied — the converter has no
//     tied fallback for arwkv7 and llama.cpp requires output.weight;
//   - the tokenizer: tokenizer.json and its sibling files copied from the student directory, or
//     written from the GGUF metadata; tokenizer_config.json names a tokenizer_class so that
//     transformers' AutoTokenizer does not need to know model_type rwkv_hybrid.
// The directory is written as OUT.tmp-XXXXXXXX and renamed into place at the end.
#pragma once

#include <string>

#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

struct HfExportReport {
  std::string out;
  int64_t n_tensors = 0;
  bool added_lm_head = false;
  // Empty, or why llama.cpp's converter will not produce a loadable file (it hard-codes LoRA ranks
  // 64/64/32/128; hybrid layers).
  std::string converter_warning;
};

// model: a student checkpoint directory or an arwkv7 .gguf file. stored: F32, BF16 or F16.
// force: replace a non-empty `out`.
HfExportReport export_student_hf(const std::string& model, const std::string& out, DType stored, bool force);

}  // namespace arwkv
