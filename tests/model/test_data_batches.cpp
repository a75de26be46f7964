// Packed batches from a data directory: over one epoch every training token appears exactly once,
// each document as one unbroken run carrying one document id (ids change exactly at document
// boundaries, also where a document continues into the next row or batch); targets across a
// boundary are invalid; a saved cursor resumes to the same batches; the order is seeded.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "data/data_writer.h"
#include "data/dataset.h"
#include "data/tokenize_doc.h"
#include "model/test_data_util.h"

using namespace arwkv;
using arwkv::test::TempDir;

namespace {

// A corpus of text documents of very different lengths (1 to ~60 tokens) and a few chats.
struct Fixture {
  TempDir dir;
  Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  std::vector<std::vector<int32_t>> train_expected;  // every document's ids, as encode gives them
  std::string out;

  Fixture() {
    std::mt19937_64 rng(3);
    std::string jsonl;
    for (int i = 0; i < 37; ++i) {
      std::string text = std::to_string(i) + ":";
      const int words = i % 5 == 0 ? 40 : static_cast<int>(rng() % 6);
      for (int w = 0; w < words; ++w) text += " w" + std::to_string(rng() % 50);
      if (i % 9 == 4)
        jsonl += nlohmann::json{{"messages", {{{"role", "user"}, {"content", text}},
                                              {{"role", "assistant"}, {"content", "ok " + text}}}}}.dump() + "\n";
      else
        jsonl += nlohmann::json{{"text", text}}.dump() + "\n";
    }
    DataOptions o;
    o.inputs = {dir.write("c.jsonl", jsonl)};
    o.out = out = (dir.path / "data").string();
    o.val_fraction = 0.1;
    o.seed = 5;
    o.shard_tokens = 64;
    build_dataset(tok, o);
  }
};

struct DocRun {
  int64_t doc_id;
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;
};

// The stream of batches flattened and cut where the document id changes.
std::vector<DocRun> runs_of(const std::vector<Batch>& batches, int64_t max_tokens) {
  std::vector<DocRun> runs;
  int64_t n = 0;
  for (const Batch& b : batches)
    for (size_t i = 0; i < b.tokens.size() && n < max_tokens; ++i, ++n) {
      if (runs.empty() || runs.back().doc_id != b.doc_ids[i]) runs.push_back({b.doc_ids[i], {}, {}});
      runs.back().tokens.push_back(b.tokens[i]);
      runs.back().mask.push_back(b.mask[i]);
    }
  return runs;
}

std::vector<Batch> take(BatchIterator& it, int n) {
  std::vector<Batch> out(n);
  for (Batch& b : out) it.next(b);
  return out;
}

}  // namespace

TEST(DataBatches, EpochCoversEveryTokenOnceWithIdsChangingAtBoundaries) {
  Fixture f;
  const Dataset ds = Dataset::open(f.out);
  ds.check_tokenizer(f.tok);
  EXPECT_EQ(ds.manifest().bos, -1);  // rows as cut, for a tokenizer without BOS
  const int64_t n_docs = ds.n_documents(DataSplit::Train), n_tok = ds.n_tokens(DataSplit::Train);
  ASSERT_GT(n_docs, 30);
  BatchIterator it(ds, DataSplit::Train, {3, 7, 99, true});
  const int64_t per_batch = 3 * 8;
  const std::vector<Batch> batches = take(it, static_cast<int>(n_tok / per_batch) + 2);
  const std::vector<DocRun> runs = runs_of(batches, n_tok);
  ASSERT_EQ(static_cast<int64_t>(runs.size()), n_docs);

  // Each run is one whole document, each document once; the ids number the epoch's order.
  std::vector<std::vector<int32_t>> got, want;
  for (size_t r = 0; r < runs.size(); ++r) {
    EXPECT_EQ(runs[r].doc_id, static_cast<int64_t>(r));
    got.push_back(runs[r].tokens);
    const auto doc = ds.document(DataSplit::Train, it.document_at(0, r));
    EXPECT_EQ(runs[r].tokens, std::vector<int32_t>(doc.begin(), doc.end()));
    const auto mask = ds.document_mask(DataSplit::Train, it.document_at(0, r));
    EXPECT_EQ(runs[r].mask, std::vector<uint8_t>(mask.begin(), mask.end()));
  }
  for (int64_t d = 0; d < n_docs; ++d) {
    const auto doc = ds.document(DataSplit::Train, d);
    want.emplace_back(doc.begin(), doc.end());
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  int64_t mask_sum = 0;
  for (const DocRun& r : runs) mask_sum += std::count(r.mask.begin(), r.mask.end(), 1);
  EXPECT_EQ(mask_sum, ds.manifest().train.n_mask_tokens);
  EXPECT_LT(mask_sum, n_tok);  // the chats' headers and user turns are not targets

  // The stream continues into epoch 1 with a new order; targets across a boundary do not count.
  EXPECT_EQ(batches.back().doc_ids.back() / n_docs, 1);
  for (const Batch& b : batches)
    for (int64_t r = 0; r < b.B; ++r)
      for (int64_t t = 0; t < b.T; ++t) {
        if (b.doc_ids[b.at(r, t)] == b.doc_ids[b.at(r, t + 1)]) continue;
        EXPECT_FALSE(b.target_valid(r, t));
      }
  std::vector<int64_t> e0, e1;
  for (int64_t i = 0; i < n_docs; ++i) e0.push_back(it.document_at(0, i)), e1.push_back(it.document_at(1, i));
  EXPECT_NE(e0, e1);
}

TEST(DataBatches, DocumentsAreTheEncodedTexts) {
  Fixture f;
  const Dataset ds = Dataset::open(f.out);
  // Document 0 is "0: ..." unless it went to validation; find a document by its text.
  int found = 0;
  for (DataSplit s : {DataSplit::Train, DataSplit::Val})
    for (int64_t d = 0; d < ds.n_documents(s); ++d) {
      const auto doc = ds.document(s, d);
      const std::vector<int32_t> ids(doc.begin(), doc.end());
      const std::string text = f.tok.decode(ids);
      if (text.starts_with("<|im_start|>")) continue;
      EXPECT_EQ(f.tok.encode(text, false), ids);
      ++found;
    }
  EXPECT_EQ(found, 37 - 4);
}

TEST(DataBatches, CursorResumesToTheSameBatches) {
  Fixture f;
  const Dataset ds = Dataset::open(f.out);
  const BatchOptions opt{2, 13, 42, true};
  BatchIterator a(ds, DataSplit::Train, opt);
  const std::vector<Batch> all = take(a, 40);  // several epochs
  for (int k : {0, 1, 5, 17, 33}) {
    BatchIterator b(ds, DataSplit::Train, opt);
    take(b, k);
    const std::string saved = b.cursor().to_json().dump();
    BatchIterator c(ds, DataSplit::Train, opt, DataCursor::from_json(nlohmann::json::parse(saved), "saved"));
    Batch next;
    c.next(next);
    EXPECT_EQ(next.tokens, all[k].tokens) << "after " << k;
    EXPECT_EQ(next.doc_ids, all[k].doc_ids) << "after " << k;
    EXPECT_EQ(next.mask, all[k].mask) << "after " << k;
    EXPECT_EQ(next.start, all[k].start);
  }
  BatchIterator other(ds, DataSplit::Train, {2, 13, 43, true});
  EXPECT_NE(take(other, 1)[0].tokens, all[0].tokens);
}

TEST(DataBatches, ValidationInStoredOrderAndBadCursors) {
  Fixture f;
  const Dataset ds = Dataset::open(f.out);
  const int64_t n_val = ds.n_documents(DataSplit::Val);
  ASSERT_EQ(n_val, 4);  // round(37 · 0.1)
  BatchIterator it(ds, DataSplit::Val, {1, 5, 0, false});
  for (int64_t i = 0; i < n_val; ++i) EXPECT_EQ(it.document_at(0, i), i);
  Batch b;
  it.next(b);
  const auto first = ds.document(DataSplit::Val, 0);
  for (int64_t t = 0; t < std::min<int64_t>(6, first.size()); ++t) EXPECT_EQ(b.tokens[t], static_cast<int32_t>(first[t]));
  EXPECT_THROW(BatchIterator(ds, DataSplit::Val, {1, 5, 0, false}, {0, static_cast<uint64_t>(n_val), 0}), Error);
  EXPECT_THROW(BatchIterator(ds, DataSplit::Val, {1, 5, 0, false}, {0, 0, first.size()}), Error);
  EXPECT_THROW(BatchIterator(ds, DataSplit::Val, {0, 5, 0, false}), Error);
  EXPECT_THROW(DataCursor::from_json(nlohmann::json{{"epoch", 1}}, "x"), Error);
}

// Data of a tokenizer that starts sequences with BOS: documents begin with it, the manifest says
// which id it is, and every row of a batch starts with it in place of the stream's token there
// (rows cut from the middle of a document are read as such a model reads any sequence).
TEST(DataBatches, RowsStartWithBosWhereTheTokenizerAddsIt) {
  TempDir dir;
  TokenizerData d = load_tokenizer_json(arwkv::test::data_path("tokenizer/tiny_tokenizer.json"));
  d.add_bos = true;
  d.bos_id = 3;
  const Tokenizer tok(std::move(d));
  std::string jsonl;
  for (int i = 0; i < 20; ++i) jsonl += nlohmann::json{{"text", "doc " + std::to_string(i) + " w1 w2 w3 w4 w5"}}.dump() + "\n";
  DataOptions o;
  o.inputs = {dir.write("c.jsonl", jsonl)};
  o.out = (dir.path / "data").string();
  o.val_fraction = 0.0;
  o.seed = 2;
  build_dataset(tok, o);
  const Dataset ds = Dataset::open(o.out);
  ASSERT_EQ(ds.manifest().bos, 3);
  std::vector<int32_t> stream;  // epoch 0's documents in order, each starting with BOS
  BatchIterator it(ds, DataSplit::Train, {2, 5, 7, true});
  for (int64_t r = 0; r < ds.n_documents(DataSplit::Train); ++r) {
    const auto doc = ds.document(DataSplit::Train, it.document_at(0, r));
    ASSERT_EQ(doc.front(), 3u);
    stream.insert(stream.end(), doc.begin(), doc.end());
  }
  Batch b;
  int64_t replaced = 0;
  for (int64_t k = 0; (k + 1) * 2 * 6 <= static_cast<int64_t>(stream.size()); ++k) {
    it.next(b);
    for (int64_t row = 0; row < 2; ++row)
      for (int64_t t = 0; t <= 5; ++t) {
        const int32_t want = stream[static_cast<size_t>((k * 2 + row) * 6 + t)];
        EXPECT_EQ(b.tokens[static_cast<size_t>(row * 6 + t)], t == 0 ? 3 : want) << k << " " << row << " " << t;
        replaced += t == 0 && want != 3;
      }
  }
  EXPECT_GT(replaced, 0);  // some rows began inside a document
}
