// Helpers of the training-data tests: the tiny fixture tokenizer with a ChatML template, and a
// temporary directory that removes itself.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace arwkv::test {

namespace fs = std::filesystem;

inline const char* const kChatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

inline Tokenizer tiny_chat_tokenizer() {
  TokenizerData d = load_tokenizer_json(test::data_path("tokenizer/tiny_tokenizer.json"));
  d.chat_template = kChatml;
  return Tokenizer(std::move(d));
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("arwkv_test_data_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  // Nothing named like out (the directory itself or a temporary sibling) exists.
  bool nothing_named(const std::string& out) const {
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().filename().string().starts_with(out)) return false;
    return true;
  }
};

}  // namespace arwkv::test
