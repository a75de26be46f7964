// TokenizerData → HF tokenizer.json and tokenizer_config.json (see tokenizer_json_writer.h and
// FORMATS.md §4.2–4.4 for what the HF files hold).
#include "tokenizer/tokenizer_json_writer.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "formats/file_util.h"

namespace arwkv {

namespace {

using json = nlohmann::json;

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

json pre_tokenizer_json(const TokenizerData& d) {
  json list = json::array();
  for (const std::string& re : d.pre_regexes)
    list.push_back({{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}});
  list.push_back(byte_level(false));
  return {{"type", "Sequence"}, {"pretokenizers", list}};
}

// GGUF's UNUSED entries (llama.cpp's "[PAD…]" rows that fill the embedding out to its size) are no
// tokens of the HF tokenizer: they are left out, so that the file read back has the same vocabulary
// (and the same identity, data_format.h) as the GGUF it was written from.
json model_json(const TokenizerData& d) {
  json vocab = json::object();
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    const std::string& s = d.tokens[id];
    if (!s.empty() && d.token_types[id] != TokenType::Unused && !vocab.contains(s)) vocab[s] = id;
  }
  json merges = json::array();
  for (const auto& [left, right] : d.merges) merges.push_back(json::array({left, right}));
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", false},
          {"byte_fallback", false},
          {"ignore_merges", d.ignore_merges},
          {"vocab", std::move(vocab)},
          {"merges", std::move(merges)}};
}

json added_tokens_json(const TokenizerData& d) {
  json list = json::array();
  for (const AddedToken& t : d.added_tokens)
    list.push_back({{"id", t.id},
                    {"content", t.content},
                    {"single_word", false},
                    {"lstrip", t.lstrip},
                    {"rstrip", t.rstrip},
                    {"normalized", false},
                    {"special", t.special}});
  return list;
}

json token_or_null(const TokenizerData& d, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= d.tokens.size()) return nullptr;
  return d.tokens[static_cast<size_t>(id)];
}

void write_json(const json& j, const std::string& path, const std::string& source) {
  std::string text;
  try {
    text = j.dump(2);
  } catch (const json::exception& e) {
    fail("{}: cannot write {}: {}", source, path, e.what());
  }
  text += '\n';
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

}  // namespace

json tokenizer_json(const TokenizerData& d) {
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens_json(d)},
          {"normalizer", d.nfc ? json{{"type", "NFC"}} : json(nullptr)},
          {"pre_tokenizer", pre_tokenizer_json(d)},
          {"post_processor", byte_level(false)},
          {"decoder", byte_level(false)},
          {"model", model_json(d)}};
}

json tokenizer_config_json(const TokenizerData& d) {
  json c = {{"tokenizer_class", "PreTrainedTokenizerFast"},
            {"add_bos_token", false},
            {"add_eos_token", false},
            {"clean_up_tokenization_spaces", false},
            {"bos_token", token_or_null(d, d.bos_id)},
            {"eos_token", token_or_null(d, d.eos_id)},
            {"pad_token", token_or_null(d, d.pad_id)},
            {"unk_token", nullptr}};
  if (!d.chat_template.empty()) c["chat_template"] = d.chat_template;
  return c;
}

void write_tokenizer_files(const TokenizerData& d, const std::string& dir) {
  const std::filesystem::path base(dir);
  write_json(tokenizer_json(d), (base / "tokenizer.json").string(), d.source);
  write_json(tokenizer_config_json(d), (base / "tokenizer_config.json").string(), d.source);
}

}  // namespace arwkv
