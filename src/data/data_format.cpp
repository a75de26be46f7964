// Manifest (de)serialisation and the tokenizer identity of a data directory (see data_format.h).
#include "data/data_format.h"

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

namespace {

struct Fnv1a64 {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  }
  void u64(uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(v >> (8 * i));
    bytes(le, 8);
  }
};

nlohmann::json split_json(const DataSplitInfo& s) {
  nlohmann::json shards = nlohmann::json::array();
  for (const DataShard& d : s.shards) {
    nlohmann::json shard = {{"tokens", d.tokens_file}, {"docs", d.docs_file}, {"mask", d.mask_file},
                            {"documents", d.n_documents}, {"n_tokens", d.n_tokens}};
    if (!d.ref_file.empty()) shard["ref"] = d.ref_file;
    shards.push_back(std::move(shard));
  }
  return {{"documents", s.n_documents}, {"tokens", s.n_tokens}, {"chat_documents", s.n_chat_documents},
          {"mask_tokens", s.n_mask_tokens}, {"shards", shards}};
}

// A count: a non-negative integer (a float, a negative or a huge number is an error, not a cast).
int64_t count_of(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json& v = j.at(key);
  constexpr int64_t kMax = int64_t{1} << 48;
  const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(kMax)
                                         : v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMax;
  if (!ok) fail("{}: '{}' is {}, expected a count in [0, 2^48]", source, key, v.dump());
  return v.get<int64_t>();
}

DataSplitInfo split_from_json(const nlohmann::json& j, const std::string& source) {
  DataSplitInfo s;
  s.n_documents = count_of(j, "documents", source);
  s.n_tokens = count_of(j, "tokens", source);
  s.n_chat_documents = count_of(j, "chat_documents", source);
  s.n_mask_tokens = count_of(j, "mask_tokens", source);
  for (const auto& d : j.at("shards"))
    s.shards.push_back({d.at("tokens").get<std::string>(), d.at("docs").get<std::string>(),
                        d.at("mask").get<std::string>(), d.value("ref", std::string{}), count_of(d, "documents", source),
                        count_of(d, "n_tokens", source)});
  return s;
}

}  // namespace

TokenizerIdentity tokenizer_identity(const Tokenizer& tokenizer) {
  const TokenizerData& d = tokenizer.data();
  Fnv1a64 h;
  for (size_t id = 0; id < d.tokens.size(); ++id) {
    if (d.tokens[id].empty() || d.token_types[id] == TokenType::Unused) continue;
    h.u64(id);
    h.u64(d.tokens[id].size());
    h.bytes(d.tokens[id].data(), d.tokens[id].size());
  }
  return {d.source, tokenizer.vocab_size(), fmt::format("fnv1a64:{:016x}", h.h)};
}

std::string data_shard_file(const std::string& split, size_t index, const char* extension) {
  return fmt::format("{}-{:05}.{}", split, index, extension);
}

nlohmann::json DataManifest::to_json() const {
  nlohmann::json ins = nlohmann::json::array();
  for (const DataInput& i : inputs)
    ins.push_back({{"path", i.path}, {"kind", i.kind}, {"files", i.n_files}, {"documents", i.n_documents},
                   {"tokens", i.n_tokens}});
  nlohmann::json j = {{"format", kDataFormatName},
          {"version", version},
          {"tokenizer", {{"source", tokenizer.source}, {"vocab_size", tokenizer.vocab_size},
                         {"vocab_hash", tokenizer.vocab_hash}}},
          {"token_dtype", "uint32"},
          {"has_masks", has_masks},
          {"pairs", pairs},
          {"max_token_id", max_token_id},
          {"seed", seed},
          {"val_fraction", val_fraction},
          {"shard_tokens", shard_tokens},
          {"splits", {{"train", split_json(train)}, {"val", split_json(val)}}},
          {"inputs", ins}};
  if (bos >= 0) j["bos"] = bos;
  return j;
}

DataManifest DataManifest::from_json(const nlohmann::json& j, const std::string& source) {
  const auto format = j.is_object() ? j.find("format") : j.end();  // value() throws for a non-string
  if (format == j.end() || !format->is_string() || *format != kDataFormatName)
    fail("{}: not an arwkv data manifest (format is not \"{}\")", source, kDataFormatName);
  DataManifest m;
  try {
    const nlohmann::json& version = j.at("version");
    if (!version.is_number_integer() || version.get<int64_t>() < 1)
      fail("{}: data format version {} is not a positive integer", source, version.dump());
    if (version.get<int64_t>() > kDataFormatVersion)
      fail("{}: data format version {} is newer than this program reads ({})", source, version.dump(), kDataFormatVersion);
    m.version = static_cast<int>(version.get<int64_t>());
    if (j.at("token_dtype").get<std::string>() != "uint32")
      fail("{}: token_dtype {} is not supported (uint32 only)", source, j.at("token_dtype").dump());
    const auto& t = j.at("tokenizer");
    m.tokenizer = {t.at("source").get<std::string>(), count_of(t, "vocab_size", source),
                   t.at("vocab_hash").get<std::string>()};
    m.has_masks = j.at("has_masks").get<bool>();
    m.pairs = j.value("pairs", false);  // absent in data written before preference data existed
    m.max_token_id = j.at("max_token_id") == -1 ? -1 : count_of(j, "max_token_id", source);
    if (j.contains("bos")) {  // absent for tokenizers without one, and in data written before it existed
      const int64_t bos = count_of(j, "bos", source);
      if (bos >= m.tokenizer.vocab_size) fail("{}: bos {} is outside the vocabulary of {}", source, bos, m.tokenizer.vocab_size);
      m.bos = static_cast<int32_t>(bos);
    }
    if (!j.at("seed").is_number_unsigned()) fail("{}: the seed is not an unsigned integer", source);
    m.seed = j.at("seed").get<uint64_t>();
    m.val_fraction = j.at("val_fraction").get<double>();
    m.shard_tokens = count_of(j, "shard_tokens", source);
    m.train = split_from_json(j.at("splits").at("train"), source);
    m.val = split_from_json(j.at("splits").at("val"), source);
    for (const auto& i : j.at("inputs"))
      m.inputs.push_back({i.at("path").get<std::string>(), i.at("kind").get<std::string>(), count_of(i, "files", source),
                          count_of(i, "documents", source), count_of(i, "tokens", source)});
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed manifest: {}", source, e.what());
  }
  if (m.pairs) {
    if (!m.has_masks) fail("{}: preference data (\"pairs\") without masks", source);
    for (const DataSplitInfo* s : {&m.train, &m.val}) {
      if (s->n_documents % 2 != 0)
        fail("{}: preference data with an odd number of documents ({}) in a split", source, s->n_documents);
      for (const DataShard& d : s->shards)
        if (d.ref_file.empty() || d.n_documents % 2 != 0)
          fail("{}: preference data shard {} lacks a ref file or splits a pair", source, d.tokens_file);
    }
  }
  return m;
}

}  // namespace arwkv
