// Building a data directory (`arwkv data`): read the corpus (corpus_reader.h), tokenize every
// document (in parallel, results kept in input order), choose the validation documents with a
// seeded shuffle, and write the shards and manifest (data_format.h) into a temporary sibling
// directory that is renamed onto the target only when complete; on any error nothing is left.
// The whole tokenized corpus is held in memory (5 bytes per token) until it is written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/data_format.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

struct DataProgress {
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t bytes = 0;  // text bytes read
};

struct DataOptions {
  std::vector<std::string> inputs;
  std::string out;
  double val_fraction = 0.01;  // of the documents; at least one when > 0 and there are two or more
  uint64_t seed = 0;
  int64_t shard_tokens = int64_t{1} << 24;  // a shard is closed once it holds this many tokens
  bool split_paragraphs = false;
  bool force = false;  // replace an existing non-empty out directory
  int threads = 0;     // tokenizing threads; 0 = OpenMP's default
  std::function<void(const DataProgress&)> progress;  // called now and then while reading
};

struct DataReport {
  DataManifest manifest;
  int64_t text_bytes = 0;
  double seconds = 0.0;  // reading and tokenizing and writing
};

// Throws arwkv::Error naming the file (file:line for JSONL) for bad inputs, an empty corpus or a
// directory that cannot be written.
DataReport build_dataset(const Tokenizer& tokenizer, const DataOptions& opt);

// Preference data (`arwkv pairs`, the dpo stage): per pair the chosen and the rejected reply to one
// prompt, each the whole tokenized conversation with its mask (1 on the reply) and, per token, the
// reference model's log-probability of it (0 for the first token).
struct ScoredDocument {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  std::vector<float> ref;
};
struct PreferencePair {
  ScoredDocument chosen, rejected;
};
struct PairDataOptions {
  std::string out;
  double val_fraction = 0.05;  // of the pairs
  uint64_t seed = 0;
  bool force = false;
  DataInput input;  // what the pairs were made from (path, kind), for the manifest
};
// Writes pairs as a data directory with "pairs": true (data_format.h), atomically like
// build_dataset. Throws arwkv::Error for an empty list or a document whose arrays disagree.
DataReport write_pair_dataset(const Tokenizer& tokenizer, const std::vector<PreferencePair>& pairs,
                              const PairDataOptions& opt);

// The validation documents: a seeded choice of round(n·fraction) of n (at least one when fraction
// > 0 and n ≥ 2, never all); true = validation.
std::vector<bool> choose_validation(int64_t n_documents, double fraction, uint64_t seed);

}  // namespace arwkv
