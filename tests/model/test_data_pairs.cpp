// Preference data (write_pair_dataset, read by Dataset and BatchIterator): pairs stay together in
// one split and one shard; each batch row is one document from its first token, cut at T + 1 and
// padded with uncounted targets; rows 2j and 2j + 1 are a pair's chosen and rejected documents
// with their reference log-probabilities; an epoch visits every pair once in a seeded order; odd
// batches and manifests that break a pair are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "data/data_writer.h"
#include "data/dataset.h"
#include "model/test_data_util.h"

using namespace arwkv;
using arwkv::test::TempDir;

namespace {

// Pair i: documents of 3 + i % 7 and 2 + i % 5 tokens; token k of document d of pair i is
// 10·i + k + d (ids below 300), mask 1 after the first two tokens, ref = −(i + k / 10).
ScoredDocument document(int i, int d) {
  ScoredDocument s;
  const int n = d == 0 ? 3 + i % 7 : 2 + i % 5;
  for (int k = 0; k < n; ++k) {
    s.ids.push_back((10 * i + k + d) % 290);
    s.mask.push_back(k >= 2 ? 1 : 0);
    s.ref.push_back(k == 0 ? 0.0f : -(static_cast<float>(i) + static_cast<float>(k) / 10.0f));
  }
  return s;
}

std::vector<PreferencePair> make_pairs(int n) {
  std::vector<PreferencePair> p;
  for (int i = 0; i < n; ++i) p.push_back({document(i, 0), document(i, 1)});
  return p;
}

struct PairFixture {
  TempDir dir;
  Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  std::string out = (dir.path / "pairs").string();
  explicit PairFixture(int n = 23) {
    PairDataOptions o;
    o.out = out;
    o.val_fraction = 0.2;
    o.seed = 3;
    o.input = {"chats.jsonl", "jsonl", 1, 0, 0};
    write_pair_dataset(tok, make_pairs(n), o);
  }
};

// Which pair a document of the split is, from its first token and length.
int pair_of(std::span<const uint32_t> ids) { return static_cast<int>(ids[0]) / 10; }

TEST(DataPairs, PairsStayTogetherAndKeepTheirValues) {
  PairFixture f;
  const Dataset d = Dataset::open(f.out);
  EXPECT_TRUE(d.manifest().pairs);
  EXPECT_EQ(d.n_documents(DataSplit::Val), 2 * 5);  // round(23 · 0.2) pairs
  EXPECT_EQ(d.n_documents(DataSplit::Train), 2 * 18);
  std::set<int> seen;
  for (DataSplit s : {DataSplit::Train, DataSplit::Val})
    for (int64_t j = 0; j < d.n_documents(s); j += 2) {
      const int i = pair_of(d.document(s, j));
      EXPECT_TRUE(seen.insert(i).second) << "pair " << i << " appears twice";
      for (int k = 0; k < 2; ++k) {
        const ScoredDocument want = document(i, k);
        const auto ids = d.document(s, j + k);
        const auto mask = d.document_mask(s, j + k);
        const auto ref = d.document_ref(s, j + k);
        ASSERT_EQ(ids.size(), want.ids.size()) << "pair " << i << " document " << k;
        for (size_t t = 0; t < ids.size(); ++t) {
          EXPECT_EQ(static_cast<int32_t>(ids[t]), want.ids[t]);
          EXPECT_EQ(mask[t], want.mask[t]);
          EXPECT_EQ(ref[t], want.ref[t]);
        }
      }
    }
  EXPECT_EQ(seen.size(), 23u);
}

TEST(DataPairs, RowsArePairsFromTheirFirstTokenPaddedAndCut) {
  PairFixture f;
  const Dataset d = Dataset::open(f.out);
  const int64_t T = 6;  // shorter than some documents (up to 9 tokens): they are cut at T + 1
  BatchIterator it(d, DataSplit::Train, BatchOptions{4, T, 11, true});
  std::multiset<int> visited;
  Batch b;
  for (int step = 0; step < 9; ++step) {  // 18 training pairs, 2 a batch: one epoch
    it.next(b);
    ASSERT_EQ(b.ref.size(), b.tokens.size());
    for (int64_t row = 0; row < b.B; row += 2) {
      const int i = static_cast<int>(b.tokens[b.at(row, 0)]) / 10;
      visited.insert(i);
      for (int k = 0; k < 2; ++k) {
        const ScoredDocument want = document(i, k);
        const auto n = static_cast<int64_t>(want.ids.size());
        for (int64_t t = 0; t <= T; ++t) {
          const int64_t at = b.at(row + k, t);
          if (t < n) {
            EXPECT_EQ(b.tokens[at], want.ids[t]);
            EXPECT_EQ(b.mask[at], want.mask[t]);
            EXPECT_EQ(b.ref[at], want.ref[t]);
          } else {
            EXPECT_EQ(b.mask[at], 0) << "padding is never a target";
          }
          if (t < T) {
            EXPECT_EQ(b.target_valid(row + k, t), t + 1 < n && want.mask[t + 1] == 1);
          }
        }
        EXPECT_NE(b.doc_ids[b.at(row + k, 0)], b.doc_ids[b.at(row + (1 - k), 0)]);
      }
    }
  }
  EXPECT_EQ(visited.size(), 18u);
  EXPECT_EQ(std::set<int>(visited.begin(), visited.end()).size(), 18u) << "each pair once an epoch";

  // A saved cursor resumes to the same batch.
  BatchIterator a(d, DataSplit::Train, BatchOptions{4, T, 11, true});
  Batch x, y;
  a.next(x);
  BatchIterator c(d, DataSplit::Train, BatchOptions{4, T, 11, true}, a.cursor());
  a.next(x);
  c.next(y);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_EQ(x.ref, y.ref);
}

TEST(DataPairs, OddBatchesAndBrokenManifestsAreRefused) {
  PairFixture f;
  const Dataset d = Dataset::open(f.out);
  try {
    BatchIterator it(d, DataSplit::Train, BatchOptions{3, 8, 0, true});
    FAIL() << "an odd batch of preference data was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("even batch"), std::string::npos) << e.what();
  }
  // A manifest whose shard lost its ref file.
  const std::string manifest = (std::filesystem::path(f.out) / "manifest.json").string();
  std::ifstream in(manifest);
  nlohmann::json j = nlohmann::json::parse(in);
  in.close();
  j["splits"]["train"]["shards"][0].erase("ref");
  std::ofstream(manifest) << j.dump();
  try {
    Dataset::open(f.out);
    FAIL() << "preference data without a ref file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ref file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("manifest.json"), std::string::npos) << e.what();
  }
  // Arrays that disagree are refused when writing, and nothing is left behind.
  std::vector<PreferencePair> bad = make_pairs(3);
  bad[1].rejected.ref.pop_back();
  PairDataOptions o;
  o.out = (f.dir.path / "bad").string();
  EXPECT_THROW(write_pair_dataset(f.tok, bad, o), Error);
  EXPECT_FALSE(std::filesystem::exists(o.out));
}

TEST(DataPairs, TextDataHasNoReferenceValues) {
  TempDir dir;
  const Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  DataOptions o;
  o.inputs = {dir.write("a.txt", "hello world, a plain document")};
  o.out = (dir.path / "data").string();
  build_dataset(tok, o);
  const Dataset d = Dataset::open(o.out);
  EXPECT_FALSE(d.manifest().pairs);
  BatchIterator it(d, DataSplit::Train, BatchOptions{1, 4, 0, false});
  Batch b;
  it.next(b);
  EXPECT_TRUE(b.ref.empty());
}

}  // namespace
