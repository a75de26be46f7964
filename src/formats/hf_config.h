// Model hyper-parameters from an HF config.json (FORMATS.md §7) or from GGUF metadata (§3.3),
// and the tensor list a Llama-family teacher checkpoint must hold.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/tensor.h"
#include "model/config.h"

namespace arwkv {

class GgufFile;

// `source` names the file in error messages.
ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& source);
ModelConfig load_hf_config(const std::string& config_json_path);

// From `{arch}.*` keys; the vocabulary size is token_embd's row count and the embedding is tied
// when there is no output.weight.
ModelConfig config_from_gguf(const GgufFile& f);

// Every tensor (HF name, HF shape) a llama/qwen2 checkpoint of this config holds. lm_head.weight
// is listed only for an untied model.
std::vector<std::pair<std::string, Shape>> teacher_tensor_list(const ModelConfig& c);

}  // namespace arwkv
