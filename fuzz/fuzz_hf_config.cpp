// A model's config.json (src/formats/hf_config.cpp, src/model/student/student_config.cpp): the
// teacher's HF config, or a student's (model_type "rwkv_hybrid") as the loaders tell them apart,
// then the tensor list that a checkpoint of that config must hold.
#include "formats/hf_config.h"
#include "fuzz_util.h"
#include "model/student/student_config.h"

using namespace arwkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("config.json", fuzz::as_text(data, size));
  if (is_student_config_file(path))
    fuzz::accepts([&] { student_tensor_list(load_student_config(path)); });
  else
    fuzz::accepts([&] { teacher_tensor_list(load_hf_config(path)); });
  return 0;
}
