// TokenizerData → HF tokenizer.json and tokenizer_config.json (see tokenizer_json_writer.h and
// FORMATS.md §4.2–4.4 for what the HF files hold).
#include "tokenizer/tokenizer_json_writer.h"

#include <cstdio>
#include <filesystem>

#include <algorithm>
#include <unordered_set>

#include "core/error.h"
#include "formats/file_util.h"
#include "tokenizer/utf8.h"

namespace arwkv {

namespace {

using json = nlohmann::json;

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

json token_or_null(const TokenizerData& d, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= d.tokens.size()) return nullptr;
  return d.tokens[static_cast<size_t>(id)];
}

const std::string kSpace = "\xE2\x96\x81";  // U+2581

// SentencePiece as HF writes it (transformers' SpmConverter, e.g. Gemma's tokenizer.json): BPE with
// byte fallback whose merges are every split of a normal token into two normal tokens, ordered by
// the token's score (higher first; ties by id, then by where the split is). That BPE merges the
// same pairs in the same order as the score-ordered merging of spm.h, and the reader gets the
// scores back from the merge ranks.
json spm_merges_json(const TokenizerData& d) {
  std::unordered_set<std::string_view> normal;
  for (size_t id = 0; id < d.tokens.size(); ++id)
    if (d.token_types[id] == TokenType::Normal && !d.tokens[id].empty()) normal.insert(d.tokens[id]);
  struct Merge {
    float score;
    size_t id, split;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    const std::string& t = d.tokens[id];
    if (d.token_types[id] != TokenType::Normal) continue;
    for (size_t i = utf8::step(t, 0).len; i < t.size(); i += utf8::step(t, i).len)
      if (normal.count(std::string_view(t).substr(0, i)) && normal.count(std::string_view(t).substr(i)))
        merges.push_back({d.scores[id], id, i});
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json list = json::array();
  for (const Merge& m : merges) {
    const std::string& t = d.tokens[m.id];
    list.push_back(json::array({t.substr(0, m.split), t.substr(m.split)}));
  }
  return list;
}

json spm_normalizer_json(const TokenizerData& d) {
  const json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  if (!d.add_space_prefix) return replace;
  return {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kSpace}}, replace})}};
}

json spm_decoder_json(const TokenizerData& d) {
  json list = json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                           {{"type", "ByteFallback"}},
                           {{"type", "Fuse"}}});
  if (d.add_space_prefix) list.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {{"type", "Sequence"}, {"decoders", list}};
}

// HF's TemplateProcessing that puts BOS (and EOS) around each sequence, as add_bos/add_eos say.
json spm_post_processor_json(const TokenizerData& d) {
  if (!d.add_bos && !d.add_eos) return nullptr;
  json special = json::object();
  auto around = [&](const char* sequence) {
    json list = json::array();
    auto add = [&](int32_t id) {
      const std::string& t = d.tokens[static_cast<size_t>(id)];
      special[t] = {{"id", t}, {"ids", json::array({id})}, {"tokens", json::array({t})}};
      list.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    };
    if (d.add_bos) add(d.bos_id);
    list.push_back({{"Sequence", {{"id", sequence}, {"type_id", 0}}}});
    if (d.add_eos) add(d.eos_id);
    return list;
  };
  json single = around("A"), pair = around("A");
  for (const json& x : around("B")) pair.push_back(x);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}};
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
  const bool spm = d.kind == TokenizerKind::SentencePiece;
  json merges = json::array();
  if (spm)
    merges = spm_merges_json(d);
  else
    for (const auto& [left, right] : d.merges) merges.push_back(json::array({left, right}));
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", spm ? token_or_null(d, d.unk_id) : json(nullptr)},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", spm},
          {"byte_fallback", spm},
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
  if (d.kind == TokenizerKind::SentencePiece)
    return {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added_tokens_json(d)},
            {"normalizer", spm_normalizer_json(d)},
            {"pre_tokenizer", nullptr},
            {"post_processor", spm_post_processor_json(d)},
            {"decoder", spm_decoder_json(d)},
            {"model", model_json(d)}};
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
            {"add_bos_token", d.add_bos},
            {"add_eos_token", d.add_eos},
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
