// Everything a command needs to run a model given on the command line: the checkpoint, a backend,
// the model on it and its tokenizer.
#pragma once

#include <memory>
#include <string>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "model/language_model.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

// The checkpoint file is only read while loading: the weights then live in the backend's memory
// and the file is unmapped, so it does not stay resident beside them.
struct LoadedModel {
  std::unique_ptr<Ops> ops;
  std::unique_ptr<LanguageModel> model;
  std::unique_ptr<Tokenizer> tokenizer;

  // path: a student checkpoint directory (config.json of model_type rwkv_hybrid), a teacher's HF
  // directory, a .safetensors file beside its config.json, or a .gguf file.
  // backend: an Ops backend name (make_ops: "cpu", "cuda", ...).
  static LoadedModel open(const std::string& path, const std::string& backend = "cpu");
  bool is_student() const { return student; }
  // Token ids that end a reply: the tokenizer's stop tokens and the config's eos ids.
  std::vector<int32_t> stop_ids() const;

  bool student = false;
};

}  // namespace arwkv
