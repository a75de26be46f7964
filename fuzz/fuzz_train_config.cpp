// Distillation configs (src/train/config.cpp): TOML text to [run] and [[stage]] tables, then what
// the trainer derives from each stage (steps, warmup, trained groups and their learning rates).
#include "fuzz_util.h"
#include "train/config.h"

using namespace arwkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::accepts([&] {
    const TrainConfig c = parse_train_config(std::string(fuzz::as_text(data, size)), "fuzz.toml");
    for (const StageConfig& s : c.stages) {
      s.total_steps();
      s.warmup_steps();
      for (const char* group : {"time_mix", "mlp", "embedding", "norm", "head"}) s.lr_scale_of(group), s.trains(group);
    }
  });
  return 0;
}
