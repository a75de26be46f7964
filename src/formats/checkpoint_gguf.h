// The GGUF side of Checkpoint: llama.cpp tensor names to HF names, and undoing llama.cpp's
// q/k row permutation for the llama architecture (FORMATS.md §3.2, §3.4).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/config.h"

namespace arwkv {

class Checkpoint;

std::unique_ptr<Checkpoint> open_gguf_checkpoint(const std::string& path);

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight" in the family of `arch`; empty
// for a name with no HF counterpart.
std::string hf_name_from_gguf(const std::string& gguf_name, Arch arch = Arch::Llama);

// dst (HF row order) from src (llama.cpp order) of `rows` rows of `cols` values, rows grouped in
// n_heads heads: HF row h·d + j·(d/2) + i = GGUF row h·d + 2i + j.
void llama_unpermute_rows(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_heads);
// The same for rows of row_bytes bytes each (a compact tensor's rows, kept as stored).
void llama_unpermute_row_bytes(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int64_t n_heads);

}  // namespace arwkv
