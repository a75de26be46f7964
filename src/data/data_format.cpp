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
  for (const DataShard& d : s.shards)
    shards.push_back({{"tokens", d.tokens_file}, {"docs", d.docs_file}, {"mask", d.mask_file},
                      {"documents", d.n_documents}, {"n_tokens", d.n_tokens}});
  return {{"documents", s.n_documents}, {"tokens", s.n_tokens}, {"chat_documents", s.n_chat_documents},
          {"mask_tokens", s.n_mask_tokens}, {"shards", shards}};
}

DataSplitInfo split_from_json(const nlohmann::json& j) {
  DataSplitInfo s;
  s.n_documents = j.at("documents").get<int64_t>();
  s.n_tokens = j.at("tokens").get<int64_t>();
  s.n_chat_documents = j.at("chat_documents").get<int64_t>();
  s.n_mask_tokens = j.at("mask_tokens").get<int64_t>();
  for (const auto& d : j.at("shards"))
    s.shards.push_back({d.at("tokens").get<std::string>(), d.at("docs").get<std::string>(),
                        d.at("mask").get<std::string>(), d.at("documents").get<int64_t>(),
                        d.at("n_tokens").get<int64_t>()});
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
  return {{"format", kDataFormatName},
          {"version", version},
          {"tokenizer", {{"source", tokenizer.source}, {"vocab_size", tokenizer.vocab_size},
                         {"vocab_hash", tokenizer.vocab_hash}}},
          {"token_dtype", "uint32"},
          {"has_masks", has_masks},
          {"max_token_id", max_token_id},
          {"seed", seed},
          {"val_fraction", val_fraction},
          {"shard_tokens", shard_tokens},
          {"splits", {{"train", split_json(train)}, {"val", split_json(val)}}},
          {"inputs", ins}};
}

DataManifest DataManifest::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || j.value("format", "") != kDataFormatName)
    fail("{}: not an arwkv data manifest (format is not \"{}\")", source, kDataFormatName);
  DataManifest m;
  try {
    m.version = j.at("version").get<int>();
    if (m.version > kDataFormatVersion)
      fail("{}: data format version {} is newer than this program reads ({})", source, m.version, kDataFormatVersion);
    if (j.at("token_dtype").get<std::string>() != "uint32")
      fail("{}: token_dtype {} is not supported (uint32 only)", source, j.at("token_dtype").dump());
    const auto& t = j.at("tokenizer");
    m.tokenizer = {t.at("source").get<std::string>(), t.at("vocab_size").get<int64_t>(),
                   t.at("vocab_hash").get<std::string>()};
    m.has_masks = j.at("has_masks").get<bool>();
    m.max_token_id = j.at("max_token_id").get<int64_t>();
    m.seed = j.at("seed").get<uint64_t>();
    m.val_fraction = j.at("val_fraction").get<double>();
    m.shard_tokens = j.at("shard_tokens").get<int64_t>();
    m.train = split_from_json(j.at("splits").at("train"));
    m.val = split_from_json(j.at("splits").at("val"));
    for (const auto& i : j.at("inputs"))
      m.inputs.push_back({i.at("path").get<std::string>(), i.at("kind").get<std::string>(),
                          i.at("files").get<int64_t>(), i.at("documents").get<int64_t>(),
                          i.at("tokens").get<int64_t>()});
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed manifest: {}", source, e.what());
  }
  return m;
}

}  // namespace arwkv
