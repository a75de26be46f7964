// Tokenizers the targets that tokenize share, loaded once per process: SmolLM2's from the default
// teacher's GGUF metadata (models/, fetched by scripts/fetch_models.sh; with its ChatML template)
// and Qwen2's from the committed tokenizer.json fixture (NFC, another pre-tokenizer).
#pragma once

#include <zlib.h>

#include <cstdio>
#include <memory>

#include "formats/gguf.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv::fuzz {

inline const Tokenizer& smollm2_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    const std::string path = std::string(ARWKV_MODELS_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "%s is missing: run scripts/fetch_models.sh\n", path.c_str());
      std::abort();
    }
    return std::make_unique<Tokenizer>(tokenizer_data_from_gguf(*GgufFile::open(path)));
  }();
  return *tok;
}

inline const Tokenizer& qwen2_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    gzFile in = gzopen((std::string(ARWKV_TEST_DATA_DIR) + "/tokenizer/qwen2_tokenizer.json.gz").c_str(), "rb");
    if (!in) std::abort();
    std::string json;
    char buf[1 << 16];
    for (int n; (n = gzread(in, buf, sizeof buf)) > 0;) json.append(buf, static_cast<size_t>(n));
    gzclose(in);
    std::filesystem::create_directories(scratch_dir() / "qwen2");
    return std::make_unique<Tokenizer>(load_tokenizer_json(write_scratch("qwen2/tokenizer.json", json)));
  }();
  return *tok;
}

}  // namespace arwkv::fuzz
