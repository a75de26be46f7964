// Tokenizer from HF tokenizer.json (FORMATS.md §4.2–4.4). Read: model (type BPE; vocab object
// string → id; merges as "a b" strings or ["a", "b"] pairs, in rank order; ignore_merges),
// added_tokens [{id, content, special, lstrip, rstrip, ...}], normalizer (null, NFC, or a Sequence
// of those), pre_tokenizer (Sequence of Split{Regex|String, behavior Isolated}, Digits and
// ByteLevel, which must be present). A BPE with byte_fallback is SentencePiece as HF writes it
// (Gemma, Llama 2): normalizer Replace " " → "▁" (after a Prepend "▁" when a space prefix is put),
// no pre-tokenizer (or the no-op Split on " " of Gemma's file), merges in score order; a token's
// score is minus the rank of the first merge that makes it, <0xXX> tokens are byte tokens.
// Next to it, when present: tokenizer_config.json (bos/eos/pad token, chat_template, and for
// SentencePiece add_bos_token/add_eos_token), chat_template.jinja, generation_config.json
// (eos_token_id: int or list).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer_data.h"

namespace arwkv {

namespace {

using json = nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

// Escapes a literal for PCRE2 (\Q...\E cannot hold "\E", so escape character by character).
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// A token id: an integer in [0, 2^24] (a float, a negative or a huge number is an error, not a cast).
int32_t token_id_of(const std::string& path, const json& v, const std::string& what) {
  const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= (1u << 24)
                                        : v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= (1 << 24);
  if (!ok) fail("{}: {} has id {}, expected an integer in [0, 2^24]", path, what, v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

bool pre_tokenizer(const std::string& path, const json& p, std::vector<std::string>& regexes) {
  if (p.is_null()) return false;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    bool byte_level = false;
    for (const auto& sub : p.at("pretokenizers")) byte_level |= pre_tokenizer(path, sub, regexes);
    return byte_level;
  }
  if (type == "ByteLevel") {
    if (p.value("add_prefix_space", false)) fail("{}: ByteLevel add_prefix_space is not supported", path);
    if (p.value("use_regex", true)) regexes.push_back(kGpt2Regex);
    return true;
  }
  if (type == "Digits") {
    regexes.push_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    return false;
  }
  if (type == "Split") {
    if (p.value("behavior", "") != "Isolated" || p.value("invert", false))
      fail("{}: Split pre-tokenizer with behavior '{}' invert {} is not supported (only Isolated)", path,
           p.value("behavior", ""), p.value("invert", false));
    const json& pat = p.at("pattern");
    if (pat.contains("Regex"))
      regexes.push_back(pat.at("Regex").get<std::string>());
    else
      regexes.push_back(regex_escape(pat.at("String").get<std::string>()));
    return false;
  }
  fail("{}: pre-tokenizer '{}' is not supported", path, type);
}

bool normalizer_is_nfc(const std::string& path, const json& n) {
  if (n.is_null()) return false;
  const std::string type = n.value("type", "");
  if (type == "NFC") return true;
  if (type == "Sequence") {
    bool nfc = false;
    for (const auto& sub : n.at("normalizers")) nfc |= normalizer_is_nfc(path, sub);
    return nfc;
  }
  fail("{}: normalizer '{}' is not supported (only NFC or none)", path, type);
}

// The normalizer of a SentencePiece tokenizer.json: sets add_space_prefix, refuses anything else.
void spm_normalizer(const std::string& path, const json& n, TokenizerData& d) {
  const std::string space = "\xE2\x96\x81";
  const std::string type = n.is_null() ? "" : n.value("type", "");
  if (type == "Sequence") {
    for (const auto& sub : n.at("normalizers")) spm_normalizer(path, sub, d);
    return;
  }
  if (type == "Prepend" && n.value("prepend", "") == space) {
    d.add_space_prefix = true;
    return;
  }
  if (type == "Replace" && n.at("pattern").value("String", "") == " " && n.value("content", "") == space) return;
  fail("{}: normalizer {} is not supported for a byte-fallback BPE (SentencePiece: Replace \" \" → \"▁\", Prepend)",
       path, n.dump());
}

// Scores from merge ranks (the first merge that makes a token), for the score-ordered merging of
// spm.h; tokens no merge makes score below all.
void spm_scores_from_merges(TokenizerData& d) {
  std::unordered_map<std::string, size_t> first;
  for (size_t rank = 0; rank < d.merges.size(); ++rank)
    first.emplace(d.merges[rank].first + d.merges[rank].second, rank);
  d.scores.assign(d.tokens.size(), 0.0f);
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    auto it = first.find(d.tokens[id]);
    d.scores[id] = -static_cast<float>(it == first.end() ? d.merges.size() + id : it->second);
  }
  d.merges.clear();
}

void read_model(const std::string& path, const json& m, TokenizerData& d) {
  if (m.value("type", "BPE") != "BPE") fail("{}: model type '{}' is not BPE", path, m.value("type", ""));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty())
      fail("{}: BPE {} is not supported", path, key);
  d.ignore_merges = m.value("ignore_merges", false);
  if (m.value("byte_fallback", false)) d.kind = TokenizerKind::SentencePiece;
  const json& vocab = m.at("vocab");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = token_id_of(path, it.value(), fmt::format("vocab entry '{}'", it.key()));
    if (static_cast<size_t>(id) >= d.tokens.size()) d.tokens.resize(id + 1);
    d.tokens[id] = it.key();
  }
  for (const json& merge : m.at("merges")) {
    if (merge.is_array() && merge.size() == 2) {
      d.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      continue;
    }
    const std::string s = merge.get<std::string>();
    const size_t space = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) fail("{}: merge '{}' has no space", path, s);
    d.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
  }
}

void read_added_tokens(const json& list, TokenizerData& d) {
  for (const json& t : list) {
    const std::string content = t.at("content").get<std::string>();
    AddedToken a{token_id_of(d.source, t.at("id"), fmt::format("added token '{}'", content)), content,
                 t.value("special", false), t.value("lstrip", false), t.value("rstrip", false)};
    if (static_cast<size_t>(a.id) >= d.tokens.size()) d.tokens.resize(a.id + 1);
    d.tokens[a.id] = a.content;
    d.added_tokens.push_back(std::move(a));
  }
}

std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return {};
}

// tokenizer_config.json, chat_template.jinja, generation_config.json next to tokenizer.json.
void read_siblings(const std::filesystem::path& dir, TokenizerData& d) {
  const auto config = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config)) try {
    const json c = read_json(config.string());
    auto id_of = [&](const char* key) { return c.contains(key) ? d.find_token(token_content(c[key])) : -1; };
    d.bos_id = id_of("bos_token");
    d.eos_id = id_of("eos_token");
    d.pad_id = id_of("pad_token");
    if (d.kind == TokenizerKind::SentencePiece) {
      d.unk_id = id_of("unk_token") >= 0 ? id_of("unk_token") : d.unk_id;
      d.add_bos = c.value("add_bos_token", false) && d.bos_id >= 0;
      d.add_eos = c.value("add_eos_token", false) && d.eos_id >= 0;
    }
    if (c.contains("chat_template") && c["chat_template"].is_string()) {
      d.chat_template = c["chat_template"].get<std::string>();
    } else if (c.contains("chat_template") && c["chat_template"].is_array()) {
      for (const json& t : c["chat_template"])
        if (t.value("name", "") == "default") d.chat_template = t.value("template", "");
    }
  } catch (const json::exception& e) {
    fail("{}: unexpected structure: {}", config.string(), e.what());
  }
  const auto jinja = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja)) d.chat_template = read_text(jinja.string());
  const auto generation = dir / "generation_config.json";
  if (std::filesystem::exists(generation)) {
    const json g = read_json(generation.string());
    if (g.contains("eos_token_id")) {
      const json& e = g["eos_token_id"];
      if (e.is_number_integer()) d.stop_ids.push_back(token_id_of(generation.string(), e, "eos_token_id"));
      if (e.is_array())
        for (const json& id : e) d.stop_ids.push_back(token_id_of(generation.string(), id, "eos_token_id"));
    }
  }
}

}  // namespace

TokenizerData load_tokenizer_json(const std::string& path) {
  const json j = read_json(path);
  TokenizerData d;
  d.source = path;
  d.pre_name = "tokenizer.json";
  try {
    read_model(path, j.at("model"), d);
    if (j.contains("added_tokens")) read_added_tokens(j["added_tokens"], d);
    if (d.kind == TokenizerKind::SentencePiece) {
      spm_normalizer(path, j.value("normalizer", json()), d);
      const json pre = j.value("pre_tokenizer", json());
      const bool no_op_split = !pre.is_null() && pre.value("type", "") == "Split" &&
                               pre.at("pattern").value("String", "") == " ";  // nothing left to split
      if (!pre.is_null() && !no_op_split) fail("{}: pre-tokenizer {} is not supported for SentencePiece", path, pre.dump());
      const json& model = j.at("model");
      if (model.contains("unk_token") && model["unk_token"].is_string())
        d.unk_id = d.find_token(model["unk_token"].get<std::string>());
      spm_scores_from_merges(d);
    } else {
      d.nfc = j.contains("normalizer") && normalizer_is_nfc(path, j["normalizer"]);
      if (!j.contains("pre_tokenizer") || !pre_tokenizer(path, j["pre_tokenizer"], d.pre_regexes))
        fail("{}: no ByteLevel pre-tokenizer; only byte-level BPE is supported", path);
    }
  } catch (const json::exception& e) {
    fail("{}: unexpected tokenizer.json structure: {}", path, e.what());
  }
  d.token_types.assign(d.tokens.size(), TokenType::Normal);
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    if (d.tokens[i].empty()) d.token_types[i] = TokenType::Unused;
    if (d.kind == TokenizerKind::SentencePiece && byte_token_value(d.tokens[i]) >= 0) d.token_types[i] = TokenType::Byte;
  }
  for (const AddedToken& a : d.added_tokens)
    d.token_types[a.id] = a.special ? TokenType::Control : TokenType::UserDefined;
  read_siblings(std::filesystem::path(path).parent_path(), d);
  d.add_default_stop_ids();
  return d;
}

}  // namespace arwkv
