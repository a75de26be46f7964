// One safetensors file (src/formats/safetensors.cpp): the header JSON and the tiling of the data,
// then every tensor of at most 1 MB loaded as fp32 (F32, F16, BF16; other dtypes refuse).
#include "formats/safetensors.h"
#include "fuzz_util.h"

using namespace arwkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("model.safetensors", fuzz::as_text(data, size));
  std::unique_ptr<SafetensorsFile> f;
  if (!fuzz::accepts([&] { f = SafetensorsFile::open(path); })) return 0;
  for (const SafetensorsEntry& e : f->tensors())
    if (e.end - e.begin <= (1u << 20)) fuzz::accepts([&] { f->load(e.name); });
  return 0;
}
