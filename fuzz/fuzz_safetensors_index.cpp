// The index of a sharded safetensors checkpoint (model.safetensors.index.json, read by
// SafetensorsSet in src/formats/safetensors.cpp). The input is the index; beside it lie two real
// shards (model-00001-of-00002.safetensors and model-00002-of-00002.safetensors, written at start
// from the test fixtures), so the weight map can name them, other files, or paths out of the directory.
#include "formats/safetensors.h"
#include "fuzz_util.h"

using namespace arwkv;

namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(ARWKV_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  if (!in) std::abort();
  return {std::istreambuf_iterator<char>(in), {}};
}

const std::string& index_path() {
  static const std::string path = [] {
    std::filesystem::create_directories(fuzz::scratch_dir() / "sharded");
    fuzz::write_scratch("sharded/model-00001-of-00002.safetensors", read_fixture("formats/py_safetensors.safetensors"));
    fuzz::write_scratch("sharded/model-00002-of-00002.safetensors", read_fixture("teacher/llama_tiny/model.safetensors"));
    return (fuzz::scratch_dir() / "sharded" / "model.safetensors.index.json").string();
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = index_path();
  fuzz::write_scratch("sharded/model.safetensors.index.json", fuzz::as_text(data, size));
  std::unique_ptr<SafetensorsSet> set;
  if (!fuzz::accepts([&] { set = SafetensorsSet::open(path); })) return 0;
  for (const std::string& name : set->names()) {
    fuzz::accepts([&] { set->file_of(name); });
    if (const SafetensorsEntry* e = set->find(name); e && e->end - e->begin <= 4096)
      fuzz::accepts([&] { set->load(name); });
  }
  return 0;
}
