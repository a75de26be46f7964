#include "infer/loaded_model.h"

#include <algorithm>

#include "model/teacher/teacher.h"

namespace arwkv {

LoadedModel LoadedModel::open(const std::string& path) {
  LoadedModel m;
  m.checkpoint = Checkpoint::open(path);
  m.ops = make_cpu_ops();
  m.model = std::make_unique<Teacher>(*m.checkpoint, *m.ops);
  m.tokenizer = load_tokenizer(*m.checkpoint);
  return m;
}

std::vector<int32_t> LoadedModel::stop_ids() const {
  std::vector<int32_t> ids = tokenizer->data().stop_ids;
  for (int32_t id : checkpoint->config().eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

}  // namespace arwkv
