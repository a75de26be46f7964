// The teacher: a Llama / Qwen2 decoder (SPEC §2) running on any Ops backend.
//   x = embed(ids); per layer: x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x)); logits = head(RMSNorm(x))
// Weights are uploaded once into one backend buffer. Two ways to run it:
//   - forward(): a whole sequence at once, optionally several packed documents, returning the
//     logits of every token and, on request, every layer's attention input and output;
//   - new_state()/extend() (LanguageModel): incremental decoding over a KV cache of fixed capacity.
// Not thread-safe: one caller at a time (the backend keeps scratch memory).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "model/family_parts.h"
#include "model/language_model.h"

namespace arwkv {

class Checkpoint;

// What the distillation's align stage needs from the teacher, per layer l: [T, C] each.
struct TeacherCapture {
  std::vector<HostTensor> attn_input;   // after the layer's input RMSNorm
  std::vector<HostTensor> attn_output;  // after o_proj, before the residual add
};

// The program-wide default of TeacherOptions::compact (true; arwkv --f32-weights makes it false).
void set_compact_weights_default(bool compact);
bool compact_weights_default();

// How the teacher holds its weights.
struct TeacherOptions {
  // Matrices (embedding, projections, MLP, head) stay as the checkpoint stores them when that is
  // a compact dtype (bf16, f16, GGUF quantisation blocks): the ops read them directly, dequantising
  // a tile at a time. false: every tensor becomes an fp32 copy, as the checkpoint's load() gives it.
  bool compact = compact_weights_default();
};

class Teacher final : public LanguageModel {
 public:
  // Reads every tensor of teacher_tensors(config) from the checkpoint; throws arwkv::Error naming
  // the checkpoint for a missing tensor, a wrong shape or an unusable config.
  Teacher(const Checkpoint& checkpoint, Ops& ops, TeacherOptions options = {});
  ~Teacher() override;

  const ModelConfig& config() const override { return cfg_; }
  Ops& ops() const override { return *ops_; }
  std::unique_ptr<ModelState> new_state(int64_t max_tokens) const override;
  std::vector<float> extend(ModelState& state, std::span<const int32_t> ids) const override;
  HostTensor logits(std::span<const int32_t> ids) const override { return forward(ids); }

  // Logits [T, V] of every token. doc_ids (optional, one per token) marks packed documents: a run
  // of equal ids is one document, whose tokens attend only within it, with positions from 0.
  HostTensor forward(std::span<const int32_t> ids, std::span<const int32_t> doc_ids = {},
                     TeacherCapture* capture = nullptr) const;
  // The final normed hidden state [T, C] of every token (what the head multiplies), so that the
  // logits of any rows can be made later, a chunk at a time, by head_rows: forward()'s logits are
  // head_rows of all of it. Captures as forward().
  HostTensor final_hidden(std::span<const int32_t> ids, std::span<const int32_t> doc_ids = {},
                          TeacherCapture* capture = nullptr) const;
  // logits [n, V] = hidden [n, C] · headᵀ, device tensors of this teacher's backend.
  void head_rows(Tensor logits, Tensor hidden) const;
  // Only every layer's attention input and output (what an align step trains on): the layers of
  // forward() without the final norm and the vocabulary-wide head.
  void capture_layers(std::span<const int32_t> ids, std::span<const int32_t> doc_ids, TeacherCapture& capture) const;

  size_t weight_bytes() const;  // the weights as held (compact or fp32)

  struct Layer;
  struct Workspace;

 private:
  void run_layers(Workspace& ws, int64_t T, const Tensor& k_cache, const Tensor& v_cache, int64_t n_past,
                  bool first_keys, TeacherCapture* capture) const;
  void attention_block(int64_t layer, Workspace& ws, int64_t T, Tensor k_all, Tensor v_all, int64_t n_past,
                       bool first_keys) const;
  void head(Workspace& ws, int64_t first_row, int64_t n_rows) const;
  Workspace make_workspace(int64_t rows, int64_t logit_rows) const;
  // The layers over a whole sequence (T = ids.size() rows); with logits false no final norm or head.
  Workspace run_sequence(std::span<const int32_t> ids, std::span<const int32_t> doc_ids, TeacherCapture* capture,
                         bool logits) const;

  ModelConfig cfg_;
  Ops* ops_;
  Buffer weights_;
  Tensor embed_, final_norm_, lm_head_;
  RopeFactors rope_factors_;  // empty where the family's RoPE has none
  std::vector<Layer> layers_;
};

}  // namespace arwkv
