// HF tokenizer.json and the files read beside it (src/tokenizer/tokenizer_json.cpp): the input is
// tokenizer.json, optionally followed by tokenizer_config.json, generation_config.json and
// chat_template.jinja, each introduced by the line "\n#next-file\n". A tokenizer that loads is
// built and used: a short text with special tokens is encoded and decoded, and a chat rendered.
#include "fuzz_util.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"

using namespace arwkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                      "chat_template.jinja"};
  static const bool made = std::filesystem::create_directories(fuzz::scratch_dir() / "tok");
  (void)made;
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), "\n#next-file\n", std::size(names));
  for (size_t i = 0; i < std::size(names); ++i) {
    const std::string name = std::string("tok/") + names[i];
    if (i < parts.size()) fuzz::write_scratch(name, parts[i]);
    else std::filesystem::remove(fuzz::scratch_dir() / name);
  }
  const std::string path = (fuzz::scratch_dir() / "tok" / names[0]).string();
  fuzz::accepts([&] {
    const Tokenizer tok(load_tokenizer_json(path));
    tok.decode(tok.encode("Hi <|im_start|>user\nab c  12 \xc3\xa9<|im_end|>"));
    for (int32_t id : tok.data().stop_ids) tok.is_stop(id);
    apply_chat_template(tok.data(), {{"user", "hi"}, {"assistant", "yo"}}, true);
  });
  return 0;
}
