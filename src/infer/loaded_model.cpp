#include "infer/loaded_model.h"

#include <algorithm>

#include "export/gguf_import.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher.h"

namespace arwkv {

LoadedModel LoadedModel::open(const std::string& path, const std::string& backend) {
  LoadedModel m;
  m.ops = make_ops(backend);
  if (is_arwkv7_gguf(path)) {  // a student exported for llama.cpp
    auto gguf = Arwkv7Gguf::open(path);
    m.tokenizer = std::make_unique<Tokenizer>(gguf->tokenizer());
    auto ck = StudentCheckpoint::from_loader(path, gguf->config(),
                                             [&gguf](const std::string& name) { return gguf->load(name); });
    m.model = std::make_unique<Student>(*ck, *m.ops);
    m.student = true;
  } else if (is_student_checkpoint(path)) {
    auto ck = StudentCheckpoint::open(path);
    const std::string tok = ck->tokenizer_json_path();
    if (tok.empty()) fail("{}: the student checkpoint has no tokenizer.json", path);
    m.tokenizer = std::make_unique<Tokenizer>(load_tokenizer_json(tok));
    m.model = std::make_unique<Student>(*ck, *m.ops);
    m.student = true;
  } else {
    auto ck = Checkpoint::open(path);
    m.tokenizer = load_tokenizer(*ck);
    m.model = std::make_unique<Teacher>(*ck, *m.ops);
  }
  return m;
}

std::vector<int32_t> LoadedModel::stop_ids() const {
  std::vector<int32_t> ids = tokenizer->data().stop_ids;
  for (int32_t id : model->config().eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

}  // namespace arwkv
