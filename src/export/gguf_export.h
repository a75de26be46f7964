// `arwkv export --to gguf`: a student checkpoint → one GGUF file that llama.cpp runs as architecture
// `arwkv7` (SPEC §5, FORMATS.md §8; tensor layout in arwkv7_names.h).
//
// Metadata: general.architecture "arwkv7", general.name, general.file_type (0 F32, 1 F16, 7 Q8_0),
// general.quantization_version 2 (Q8_0 only); arwkv7.context_length (1048576, as llama.cpp's
// converter), embedding_length, block_count, feed_forward_length (u32),
// attention.layer_norm_rms_epsilon (f32), wkv.head_size, attention.decay_lora_rank / iclr_lora_rank
// / value_residual_mix_lora_rank / gate_lora_rank (0 without gate), token_shift_count = 1,
// attention.head_count = 0 (all u32); then the tokenizer block (tokenizer.ggml.model "gpt2", pre,
// tokens padded with "[PAD{i}]" to the embedding rows, token_type INT32, merges, bos/eos/padding ids,
// add_bos_token false, tokenizer.chat_template).
//
// Weight types: --type f32 writes everything F32; f16 and q8_0 store the large matrices (embedding,
// head, receptance/key/value/output, MLP) as F16 or Q8_0 (F16 where a row is not a multiple of 32),
// and keep norms, mixes, LoRA matrices and vectors F32. The file is written atomically; a student
// llama.cpp cannot represent is refused before anything is written.
#pragma once

#include <cstdint>
#include <string>

#include "formats/quant.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv {

class GgufWriter;
class StudentCheckpoint;
struct ModelConfig;

struct GgufExportReport {
  std::string out;
  int64_t n_tensors = 0;
  int64_t n_tokens = 0;      // tokenizer.ggml.tokens entries (= embedding rows)
  std::string pre;           // tokenizer.ggml.pre
  uint64_t bytes = 0;        // file size
};

// The llama.cpp pre-tokenizer name whose regexes are the tokenizer's ("qwen2", "smollm", "gpt-2",
// "llama-bpe"), or empty when none is.
std::string llama_cpp_pre_name(const TokenizerData& d);

// The tokenizer.* keys for a model of `config`'s embedding rows. Throws arwkv::Error naming
// d.source when llama.cpp could not use the tokenizer (more tokens than embedding rows, a
// pre-tokenizer llama.cpp does not know).
void add_gguf_tokenizer(GgufWriter& w, const TokenizerData& d, const ModelConfig& config);

// type: F32, F16 or Q8_0. Throws arwkv::Error (and writes nothing) for a hybrid student, an unusable
// tokenizer or another type.
GgufExportReport export_student_gguf(const StudentCheckpoint& student, const TokenizerData& tokenizer,
                                     const std::string& out, GgmlType type);

}  // namespace arwkv
