// Saved model states (src/infer/state_file.cpp), restored as `arwkv generate --state-in` restores
// them: the tokens the file holds size a new state, which the file is then loaded into. Two tiny
// models of the test fixtures take the states: a teacher (a KV cache that grows with the tokens)
// and a hybrid student (RNN layers and one attention layer). Bit 0 of the first byte chooses the
// model; the rest is the file. Unless bit 1 is set, the checksum at the end of the file is
// recomputed so that the fuzzer gets past it into the header.
//
// With ARWKV_FUZZ_WRITE_SEEDS=DIR the target writes valid state files of both models into DIR and exits.
#include <algorithm>
#include <cstring>

#include "backend/ops.h"
#include "formats/checkpoint.h"
#include "fuzz_util.h"
#include "infer/state_file.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher.h"

using namespace arwkv;

namespace {

struct Models {
  std::unique_ptr<Ops> ops = make_ops("cpu");
  std::unique_ptr<Checkpoint> teacher_ck = Checkpoint::open(std::string(ARWKV_TEST_DATA_DIR) + "/teacher/llama_tiny");
  std::unique_ptr<StudentCheckpoint> student_ck =
      StudentCheckpoint::open(std::string(ARWKV_TEST_DATA_DIR) + "/student/hybrid_qwen2");
  Teacher teacher{*teacher_ck, *ops};
  Student student{*student_ck, *ops};
  const LanguageModel& model(int i) const { return i == 0 ? static_cast<const LanguageModel&>(teacher) : student; }
};

const Models& models() {
  static const Models m;
  return m;
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 2; ++i) {
    const LanguageModel& m = models().model(i);
    for (int n_tokens : {1, 3}) {
      auto state = m.new_state(8);
      std::vector<int32_t> ids;
      for (int t = 0; t < n_tokens; ++t) ids.push_back(3 + 5 * t);
      const std::vector<float> logits = m.extend(*state, ids);
      const std::string path = fmt::format("{}/model{}-{}tokens.state", dir, i, n_tokens);
      save_state_file(path, m, *state, logits);
      std::ifstream in(path, std::ios::binary);
      std::string bytes(1, static_cast<char>(i));
      bytes.append(std::istreambuf_iterator<char>(in), {});
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;  // the mode byte in front
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("ARWKV_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  models();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string file(fuzz::as_text(data + 1, size - 1));
  if (!(mode & 2) && file.size() >= 8) {
    const uint64_t h = fnv1a(reinterpret_cast<const uint8_t*>(file.data()), file.size() - 8);
    std::memcpy(file.data() + file.size() - 8, &h, 8);
  }
  const std::string path = fuzz::write_scratch("model.state", file);
  const LanguageModel& m = models().model(mode & 1);
  fuzz::accepts([&] {
    // As `generate --state-in` sizes its state, but at most 64 tokens more than the seeds hold, to
    // stay fast: a file claiming more tokens fails to restore (the state cannot hold them).
    const int64_t held = state_file_tokens(path);
    auto state = m.new_state(std::min<int64_t>(held, 64) + 2);
    load_state_file(path, m, *state);
  });
  return 0;
}
