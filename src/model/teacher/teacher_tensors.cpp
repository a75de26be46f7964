// The tensor list of the Llama-family teacher (see teacher_tensors.h).
#include "model/teacher/teacher_tensors.h"

#include <fmt/format.h>

#include "formats/hf_config.h"

namespace arwkv {

std::string layer_tensor_name(int64_t layer, const std::string& suffix) {
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

std::vector<TensorSpec> teacher_tensors(const ModelConfig& cfg) {
  ModelConfig untied = cfg;
  untied.tie_embeddings = false;
  std::vector<TensorSpec> list;
  for (auto& [name, shape] : teacher_tensor_list(untied)) list.push_back({name, shape, name != "lm_head.weight"});
  return list;
}

}  // namespace arwkv
