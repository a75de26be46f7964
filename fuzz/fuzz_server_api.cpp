// Request bodies of the server's /v1/completions and /v1/chat/completions (src/server/api.cpp),
// parsed as the server parses them, against a served model that is only SmolLM2's tokenizer (the
// parsers need no weights). Bit 0 of the first byte chooses the endpoint; the rest is the body.
// A bad request must come back as an ApiError (an HTTP 4xx answer), nothing else, and an accepted
// one must keep the promises of SequenceRequest.
#include "fixtures.h"
#include "infer/loaded_model.h"
#include "server/api.h"

using namespace arwkv;

namespace {

const ApiModel& served() {
  static const LoadedModel m = [] {
    LoadedModel m;
    m.tokenizer = std::make_unique<Tokenizer>(fuzz::smollm2_tokenizer().data());
    return m;
  }();
  static const ApiModel api{m, "smollm2", "models/SmolLM2-135M-Instruct.Q4_1.gguf", 4096};
  return api;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  served();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(fuzz::as_text(data + 1, size - 1));
  try {
    const ApiRequest r = data[0] & 1 ? parse_chat_request(served(), body) : parse_completion_request(served(), body);
    // What the scheduler relies on (scheduler.h): a prompt of real ids that fits the context.
    for (const SequenceRequest& s : r.sequences) {
      if (s.prompt.empty() || s.max_tokens < 0 || static_cast<int64_t>(s.prompt.size()) + s.max_tokens > served().ctx)
        std::abort();
      for (int32_t id : s.prompt)
        if (id < 0 || id >= served().m.tokenizer->vocab_size()) std::abort();
      for (size_t p : s.cache_points)
        if (p > s.prompt.size()) std::abort();
    }
  } catch (const ApiError&) {
  }
  return 0;
}
