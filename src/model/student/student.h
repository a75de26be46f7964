// The student (SPEC §3): the teacher's decoder with the softmax attention of every layer in
// wkv_layers replaced by RWKV-7 time mixing; the other ("hybrid") layers keep the teacher's attention.
//   x = embed(ids); per layer: x += TimeMix(RMSNorm(x)) (or Attn); x += MLP(RMSNorm(x));
//   logits = head(RMSNorm(x))
// It runs as a true RNN: a StudentState carries, per time-mix layer, the WKV state S [H, N, N] and
// the last normed input x_prev [C] (plus a KV cache for hybrid layers). Two forms of the same math:
//   - forward(): a whole sequence in one pass (wkv7_forward), optionally continuing a state, with
//     packed documents (doc_ids): where a document starts, S and x_prev restart from zero, and a
//     hybrid layer's tokens attend only within their document;
//   - extend() (LanguageModel): prefill in whole-sequence chunks, one token by the decode form
//     (wkv7_decode). Memory is constant for a pure time-mix student.
// Not thread-safe: one caller at a time (the backend keeps scratch memory).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "model/family_parts.h"
#include "model/language_model.h"
#include "model/student/student_config.h"

namespace arwkv {

class StudentCheckpoint;
class StudentState;

// Per layer l, [T, C]: the time-mix (or kept attention) output before the residual add.
struct StudentCapture {
  std::vector<HostTensor> mix_output;
};

// How a Student holds its weights. A matrix that does not train (embedding, head, MLP, kept
// attention, the r/k/v/o projections of time mixing) may stay compact: the ops read bf16/f16
// weights directly (forward and the input gradient). Vectors and LoRA matrices are always fp32.
struct StudentOptions {
  // The dtype of frozen matrices: nullopt keeps each as the checkpoint stores it (a bf16 checkpoint
  // stays bf16, an fp32 one fp32); F32, BF16 or F16 converts them to that.
  std::optional<DType> frozen;
  // The tensors that train (fp32 whatever the checkpoint stores); null: none.
  std::function<bool(const std::string& name)> trains;
};

// Whether a tensor of student_tensor_list may be held compact when it does not train: a matrix
// named "*.weight" (not a LoRA matrix, not a vector).
bool student_tensor_may_be_compact(const TensorSpec& spec);

class Student final : public LanguageModel {
 public:
  // Reads every tensor of student_tensor_list(config) into one backend buffer.
  Student(const StudentCheckpoint& checkpoint, Ops& ops, const StudentOptions& options = {});
  ~Student() override;

  const StudentConfig& student_config() const { return cfg_; }
  const ModelConfig& config() const override { return cfg_.base; }
  Ops& ops() const override { return *ops_; }
  // max_tokens bounds the KV cache of hybrid layers; a pure time-mix student ignores it.
  std::unique_ptr<ModelState> new_state(int64_t max_tokens) const override;
  std::vector<float> extend(ModelState& state, std::span<const int32_t> ids) const override;
  HostTensor logits(std::span<const int32_t> ids) const override { return forward(ids); }

  // Logits [T, V] of every token. doc_ids (optional, one per token): a run of equal ids is one
  // document. With a state, the pass continues it (the first document carries on from it) and
  // leaves it holding the end of the sequence; without one it starts from zero.
  HostTensor forward(std::span<const int32_t> ids, std::span<const int32_t> doc_ids = {},
                     ModelState* state = nullptr, StudentCapture* capture = nullptr) const;

  // forward() from a zero state with the head a chunk at a time: each(t0, logits [n, V]) for the
  // rows t0 .. t0 + n, n ≤ chunk, in order; the whole-sequence logits are never all resident.
  void forward_chunks(std::span<const int32_t> ids, std::span<const int32_t> doc_ids, int64_t chunk,
                      const std::function<void(int64_t, const HostTensor&)>& each) const;

  size_t weight_bytes() const;
  // A weight view's values as fp32 on the host, whatever dtype it is held in.
  HostTensor weight_to_host(Tensor w) const;

  struct Layer;
  struct Workspace;

  // For training, which differentiates the forward over these weight views (student_parts.h) and
  // updates the weights in place through them. lm_head() is embedding() when the two are tied.
  const std::vector<Layer>& layers() const { return layers_; }
  Tensor embedding() const { return embed_; }
  Tensor final_norm() const { return final_norm_; }
  Tensor rope_factors() const { return rope_factors_.tensor; }  // empty where RoPE has none
  Tensor lm_head() const { return lm_head_; }

 private:
  void run_layers(Workspace& ws, StudentState& s, int64_t T, bool reset, StudentCapture* capture) const;
  void time_mix_block(const Layer& w, Workspace& ws, StudentState& s, int64_t T, bool reset) const;
  void attention_block(int64_t layer, Workspace& ws, StudentState& s, int64_t T) const;
  void lora(Tensor out, Tensor x, Tensor first, Tensor second, const Tensor* bias, Workspace& ws,
            void (Ops::*activation)(Tensor, Tensor)) const;
  void head(Workspace& ws, int64_t first_row, int64_t n_rows) const;
  // Uploads ids, positions, first keys and resets of T tokens continuing state s.
  bool upload_tokens(Workspace& ws, StudentState& s, std::span<const int32_t> ids,
                     std::span<const int32_t> doc_ids) const;
  Workspace make_workspace(int64_t rows, int64_t logit_rows) const;

  StudentConfig cfg_;
  Ops* ops_;
  Buffer weights_;
  Tensor embed_, final_norm_, lm_head_;
  RopeFactors rope_factors_;  // empty where the family's RoPE has none
  std::vector<Layer> layers_;
  int n_planes_ = 6;   // token-shift mixes: r, w, k, v, a (, g)
  int64_t max_rank_ = 0;
};

}  // namespace arwkv
