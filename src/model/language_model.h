// What generation, chat, evaluation and serving need from a model, teacher or student alike: a
// state that grows (KV cache) or stays fixed (RNN state), fed tokens in chunks, returning the
// logits of the last token fed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace arwkv {

class Ops;

// The most tokens a state with a KV cache may be asked to hold: far beyond any model's context,
// and small enough that the cache's size cannot overflow (a larger request is an error).
inline constexpr int64_t kMaxStateTokens = int64_t{1} << 24;

struct StateTensor {
  std::string name;
  Tensor tensor;  // a view on the model's device
};

class ModelState {
 public:
  virtual ~ModelState() = default;
  virtual int64_t n_tokens() const = 0;      // tokens consumed so far
  virtual size_t memory_bytes() const = 0;    // bytes held by the state now
  // Everything the state has taken in (an RNN's matrices and shifted tokens; a KV cache's filled
  // rows), as named views; saving and restoring a state goes through them.
  virtual std::vector<StateTensor> tensors() = 0;
  // Declares that the state holds n tokens, before its tensors are restored; throws when they do not fit.
  virtual void set_n_tokens(int64_t n) = 0;
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual const ModelConfig& config() const = 0;
  virtual Ops& ops() const = 0;  // the backend the model runs on
  // A fresh state able to hold up to max_tokens of context (an RNN ignores the bound).
  virtual std::unique_ptr<ModelState> new_state(int64_t max_tokens) const = 0;
  // Consumes ids (one whole-sequence pass when there are several) and returns the logits [V] of
  // the last one. Throws arwkv::Error when the state cannot hold them.
  virtual std::vector<float> extend(ModelState& state, std::span<const int32_t> ids) const = 0;
  // The logits [T, V] of every token of ids, run as one fresh sequence (evaluation, distillation).
  virtual HostTensor logits(std::span<const int32_t> ids) const = 0;
};

}  // namespace arwkv
