// Developer tool (not part of arwkv's build): llama.cpp's logits for given token ids, to check an
// exported GGUF against arwkv. Links the llama.cpp built by scripts/build_llamacpp.sh (build.sh here).
//
//   llama_logits MODEL.gguf PROMPTS.txt OUT.f32     each line of PROMPTS.txt: space-separated token
//                                                   ids; OUT.f32 gets, per prompt, the logits of
//                                                   every position [T, n_vocab] as raw float32
//   llama_logits MODEL.gguf --tokenize TEXT         prints llama.cpp's token ids of TEXT (special
//                                                   tokens parsed, no BOS added)
// Each prompt runs in a fresh context (state from zero), in one batch.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

int tokenize(const llama_model* model, const std::string& text) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::vector<llama_token> ids(text.size() + 16);
  const int n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), ids.data(),
                               static_cast<int32_t>(ids.size()), /*add_special=*/false, /*parse_special=*/true);
  if (n < 0) return 1;
  for (int i = 0; i < n; ++i) std::printf("%s%d", i ? " " : "", ids[static_cast<size_t>(i)]);
  std::printf("\n");
  return 0;
}

bool run_prompt(llama_model* model, const std::vector<llama_token>& ids, std::FILE* out) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(ids.size() < 64 ? 64 : ids.size());
  cp.n_threads = cp.n_threads_batch = 2;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return false;
  llama_batch batch = llama_batch_init(static_cast<int32_t>(ids.size()), 0, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.token[i] = ids[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(ids.size());
  const bool ok = llama_decode(ctx, batch) == 0;
  const int32_t V = llama_vocab_n_tokens(llama_model_get_vocab(model));
  for (size_t i = 0; ok && i < ids.size(); ++i)
    std::fwrite(llama_get_logits_ith(ctx, static_cast<int32_t>(i)), sizeof(float), static_cast<size_t>(V), out);
  llama_batch_free(batch);
  llama_free(ctx);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf PROMPTS.txt OUT.f32 | MODEL.gguf --tokenize TEXT\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) {
    std::fprintf(stderr, "llama_logits: cannot load %s\n", argv[1]);
    return 1;
  }
  if (std::strcmp(argv[2], "--tokenize") == 0) return tokenize(model, argv[3]);
  std::ifstream prompts(argv[2]);
  std::FILE* out = std::fopen(argv[3], "wb");
  if (!prompts || !out) return 1;
  std::string line;
  while (std::getline(prompts, line)) {
    std::istringstream words(line);
    std::vector<llama_token> ids;
    for (llama_token t; words >> t;) ids.push_back(t);
    if (!ids.empty() && !run_prompt(model, ids, out)) {
      std::fprintf(stderr, "llama_logits: llama_decode failed\n");
      return 1;
    }
  }
  std::fclose(out);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
