// The on-disk layout of a tokenized training-data directory (written by `arwkv data`, read by
// Dataset), all integers little-endian:
//   manifest.json           format version, tokenizer identity, counts per split, the inputs
//   {split}-{k:05}.tokens   uint32 token ids of the split's documents, concatenated
//   {split}-{k:05}.docs     uint64 offsets into .tokens: n_documents + 1 entries, 0 first, n_tokens last
//   {split}-{k:05}.mask     uint8 per token, only when the corpus has chat documents: 1 = a token the
//                           loss may be taken on (every token of plain text; the assistant content and
//                           its closing <|im_end|> of a chat document), 0 = not (role headers, user turns)
//   {split}-{k:05}.ref      float32 per token, only in preference data (manifest "pairs": true): the
//                           log-probability the reference model gave the token after the document's
//                           earlier tokens (0 for the first token)
// split is "train" or "val"; documents never cross shards, and each holds at least one token. In
// preference data (written by `arwkv pairs`) documents 2i and 2i + 1 of a split are the chosen and
// the rejected reply to one prompt (the same prompt tokens, masks on the replies), never split
// across shards or between train and val.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace arwkv {

class Tokenizer;

inline constexpr int kDataFormatVersion = 1;
inline constexpr const char* kDataFormatName = "arwkv-data";
inline constexpr const char* kDataManifestName = "manifest.json";

// What ties token ids to their meaning: the vocabulary size and a hash of every real vocabulary
// entry (id and string; unused ids and empty strings are left out, so a GGUF vocabulary padded to
// the embedding's rows and its tokenizer.json agree).
struct TokenizerIdentity {
  std::string source;  // where the tokenizer was read from (informative only)
  int64_t vocab_size = 0;
  std::string vocab_hash;  // "fnv1a64:<16 hex digits>"
  bool same_vocabulary(const TokenizerIdentity& o) const { return vocab_hash == o.vocab_hash; }
};
TokenizerIdentity tokenizer_identity(const Tokenizer& tokenizer);

struct DataShard {
  std::string tokens_file, docs_file, mask_file;  // names inside the directory; mask_file may be empty
  std::string ref_file;                           // preference data only
  int64_t n_documents = 0;
  int64_t n_tokens = 0;
};

struct DataSplitInfo {
  int64_t n_documents = 0;
  int64_t n_tokens = 0;
  int64_t n_chat_documents = 0;
  int64_t n_mask_tokens = 0;  // tokens with mask 1
  std::vector<DataShard> shards;
};

struct DataInput {
  std::string path;
  std::string kind;  // "text", "jsonl", "directory"
  int64_t n_files = 0;
  int64_t n_documents = 0;
  int64_t n_tokens = 0;
};

struct DataManifest {
  int version = kDataFormatVersion;
  TokenizerIdentity tokenizer;
  bool has_masks = false;
  bool pairs = false;  // preference data: documents come in (chosen, rejected) pairs with .ref files
  int64_t max_token_id = -1;
  // The BOS id where the tokenizer starts every sequence with one (Gemma), else -1: the batches of
  // such data start each row with it (a row cut from the middle of a document is then read as such
  // a model reads any sequence), in place of the row's first token, which is never a target.
  int32_t bos = -1;
  uint64_t seed = 0;
  double val_fraction = 0.0;
  int64_t shard_tokens = 0;
  DataSplitInfo train, val;
  std::vector<DataInput> inputs;

  nlohmann::json to_json() const;
  // Throws arwkv::Error naming source for a missing field, another format or a newer version.
  static DataManifest from_json(const nlohmann::json& j, const std::string& source);
};

// "train-00003.tokens" and friends.
std::string data_shard_file(const std::string& split, size_t index, const char* extension);

}  // namespace arwkv
