// Reading a data directory (data_format.h) for training and evaluation.
//
// Dataset maps the shards of both splits and checks them against the manifest. BatchIterator
// packs one split into batches [B, T+1] deterministically: the documents are taken in a seeded
// order (a new permutation each epoch; the stored order without shuffle), concatenated, and cut
// into rows of T+1 tokens: inputs are a row's first T tokens, targets its last T. A document
// longer than what is left of a row continues in the next row (and the next batch); the stream
// runs on into the next epoch without padding. Every token carries a document id, unique to that
// occurrence of the document in the stream, so a model can keep documents apart: a target
// counts only when it belongs to the same document as its input and its mask is 1.
// The position of the stream is a DataCursor (epoch, index into the epoch's order, token offset
// in that document); an iterator started from a saved cursor gives the same batches as one that
// ran there.
// Preference data (manifest "pairs") is not packed: the order is a seeded permutation of the pairs,
// each row holds one document from its first token (cut at T+1 tokens, padded with token 0, mask 0
// and a document id of its own), rows 2j and 2j+1 the chosen and rejected documents of one pair,
// and the batch carries each token's reference log-probability. The cursor's index counts pairs.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "data/data_format.h"

namespace arwkv {

class Tokenizer;

enum class DataSplit { Train, Val };
const char* data_split_name(DataSplit s);

struct DataCursor {
  uint64_t epoch = 0;
  uint64_t index = 0;   // into the epoch's document order
  uint64_t offset = 0;  // tokens of that document already taken
  bool operator==(const DataCursor&) const = default;
  nlohmann::json to_json() const;
  static DataCursor from_json(const nlohmann::json& j, const std::string& source);  // throws naming source
};

class Dataset {
 public:
  // Throws arwkv::Error naming the directory or file for anything missing or inconsistent.
  static Dataset open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const DataManifest& manifest() const { return manifest_; }
  // Throws naming the directory when the data was made with another vocabulary, or uses ids the
  // model's embedding (model_vocab_rows; 0 = do not check) does not have.
  void check_tokenizer(const Tokenizer& tokenizer, int64_t model_vocab_rows = 0) const;

  int64_t n_documents(DataSplit s) const { return static_cast<int64_t>(split(s).docs.size()); }
  int64_t n_tokens(DataSplit s) const;
  std::span<const uint32_t> document(DataSplit s, int64_t i) const;
  // The document's mask (1 = may be a target); empty when the data has no masks.
  std::span<const uint8_t> document_mask(DataSplit s, int64_t i) const;
  // Preference data: the reference log-probability of each of the document's tokens.
  std::span<const float> document_ref(DataSplit s, int64_t i) const;

 private:
  struct Doc {
    uint32_t shard;
    uint64_t begin, end;  // token range in the shard
  };
  struct Split {
    std::vector<MmapFile> tokens, masks, refs;
    std::vector<Doc> docs;
  };
  const Split& split(DataSplit s) const { return s == DataSplit::Train ? train_ : val_; }
  void map_split(DataSplit s, const DataSplitInfo& info);

  std::string dir_;
  DataManifest manifest_;
  Split train_, val_;
};

struct BatchOptions {
  int64_t batch = 1;    // B rows
  int64_t seq_len = 0;  // T
  uint64_t seed = 0;
  bool shuffle = true;  // false: documents in stored order every epoch (evaluation)
};

// One batch; row b occupies [b·(T+1), (b+1)·(T+1)) of each array.
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;   // [B, T+1]
  std::vector<int64_t> doc_ids;  // [B, T+1]: epoch · n_documents + index of the token's document
  std::vector<uint8_t> mask;     // [B, T+1]: 1 = may be a target (all 1 without stored masks)
  std::vector<float> ref;        // [B, T+1]: preference data only (else empty), reference log-probabilities
  DataCursor start;              // where the batch began

  int64_t at(int64_t b, int64_t t) const { return b * (T + 1) + t; }
  int32_t input(int64_t b, int64_t t) const { return tokens[at(b, t)]; }
  int32_t target(int64_t b, int64_t t) const { return tokens[at(b, t + 1)]; }
  // Whether the target at t (t < T) counts: same document as the input, mask 1.
  bool target_valid(int64_t b, int64_t t) const {
    return doc_ids[at(b, t)] == doc_ids[at(b, t + 1)] && mask[at(b, t + 1)] != 0;
  }
};

// Rows [b0, b1) of a batch as a batch of their own (a data-parallel rank's share), into out.
void batch_rows(const Batch& from, int64_t b0, int64_t b1, Batch& out);

class BatchIterator {
 public:
  // Throws arwkv::Error for an empty split or B, T < 1.
  BatchIterator(const Dataset& data, DataSplit split, const BatchOptions& opt, DataCursor start = {});

  void next(Batch& out);  // fills out (its arrays are reused)
  const DataCursor& cursor() const { return cursor_; }  // where the next batch begins
  // The split document at position index of an epoch's order (preference data: the first document
  // of the pair there).
  int64_t document_at(uint64_t epoch, uint64_t index);
  int64_t tokens_per_epoch() const { return data_.n_tokens(split_); }

 private:
  const std::vector<int64_t>& order(uint64_t epoch);
  int64_t units() const;  // what the order permutes: documents, or pairs of preference data
  void next_pairs(Batch& out);

  const Dataset& data_;
  DataSplit split_;
  BatchOptions opt_;
  DataCursor cursor_;
  uint64_t order_epoch_ = UINT64_MAX;
  std::vector<int64_t> order_;
};

}  // namespace arwkv
