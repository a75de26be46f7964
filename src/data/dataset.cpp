// Reading data directories and packing batches (see dataset.h).
#include "data/dataset.h"

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/shuffle.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

namespace fs = std::filesystem;
static_assert(std::endian::native == std::endian::little, "data shards are read in host order");

const char* data_split_name(DataSplit s) { return s == DataSplit::Train ? "train" : "val"; }

nlohmann::json DataCursor::to_json() const { return {{"epoch", epoch}, {"index", index}, {"offset", offset}}; }

DataCursor DataCursor::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    for (const char* key : {"epoch", "index", "offset"})
      if (!j.at(key).is_number_unsigned()) fail("{}: malformed data cursor: '{}' is not an unsigned integer", source, key);
    return {j.at("epoch").get<uint64_t>(), j.at("index").get<uint64_t>(), j.at("offset").get<uint64_t>()};
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed data cursor: {}", source, e.what());
  }
}

Dataset Dataset::open(const std::string& dir) {
  Dataset d;
  d.dir_ = dir;
  const fs::path manifest = fs::path(dir) / kDataManifestName;
  std::ifstream in(manifest);
  if (!in) fail("{}: not a data directory (no {})", dir, kDataManifestName);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed JSON: {}", manifest.string(), e.what());
  }
  d.manifest_ = DataManifest::from_json(j, manifest.string());
  d.map_split(DataSplit::Train, d.manifest_.train);
  d.map_split(DataSplit::Val, d.manifest_.val);
  return d;
}

void Dataset::map_split(DataSplit which, const DataSplitInfo& info) {
  Split& s = which == DataSplit::Train ? train_ : val_;
  int64_t n_docs = 0, n_tokens = 0;
  for (const DataShard& shard : info.shards) {
    const auto shard_index = static_cast<uint32_t>(s.tokens.size());
    const MmapFile& tokens = s.tokens.emplace_back((fs::path(dir_) / shard.tokens_file).string());
    // Counts are at most 2^48 (DataManifest::from_json), so these products do not overflow.
    if (tokens.size() != static_cast<size_t>(shard.n_tokens) * sizeof(uint32_t))
      fail("{}: {} bytes, but the manifest says {} tokens", tokens.path(), tokens.size(), shard.n_tokens);
    const MmapFile docs((fs::path(dir_) / shard.docs_file).string());
    if (docs.size() != static_cast<size_t>(shard.n_documents + 1) * sizeof(uint64_t))
      fail("{}: {} bytes, but the manifest says {} documents", docs.path(), docs.size(), shard.n_documents);
    std::vector<uint64_t> offsets(static_cast<size_t>(shard.n_documents + 1));
    std::memcpy(offsets.data(), docs.data(), docs.size());
    if (offsets.front() != 0 || offsets.back() != static_cast<uint64_t>(shard.n_tokens))
      fail("{}: the offsets do not span the shard's {} tokens", docs.path(), shard.n_tokens);
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (offsets[i + 1] <= offsets[i]) fail("{}: document {} is empty or out of order", docs.path(), i);
      s.docs.push_back({shard_index, offsets[i], offsets[i + 1]});
    }
    if (manifest_.has_masks) {
      const MmapFile& mask = s.masks.emplace_back((fs::path(dir_) / shard.mask_file).string());
      if (mask.size() != static_cast<size_t>(shard.n_tokens))
        fail("{}: {} bytes, but the shard has {} tokens", mask.path(), mask.size(), shard.n_tokens);
    }
    if (manifest_.pairs) {
      const MmapFile& ref = s.refs.emplace_back((fs::path(dir_) / shard.ref_file).string());
      if (ref.size() != static_cast<size_t>(shard.n_tokens) * sizeof(float))
        fail("{}: {} bytes, but the shard has {} tokens", ref.path(), ref.size(), shard.n_tokens);
    }
    n_docs += shard.n_documents;
    n_tokens += shard.n_tokens;
  }
  if (n_docs != info.n_documents || n_tokens != info.n_tokens)
    fail("{}: the {} shards hold {} documents and {} tokens, the manifest says {} and {}", dir_,
         data_split_name(which), n_docs, n_tokens, info.n_documents, info.n_tokens);
}

void Dataset::check_tokenizer(const Tokenizer& tokenizer, int64_t model_vocab_rows) const {
  const TokenizerIdentity mine = manifest_.tokenizer, theirs = tokenizer_identity(tokenizer);
  if (!mine.same_vocabulary(theirs))
    fail("{}: the data was tokenized with another vocabulary ({}: {} tokens, {}) than the model's ({}: {} tokens, {})",
         dir_, mine.source, mine.vocab_size, mine.vocab_hash, theirs.source, theirs.vocab_size, theirs.vocab_hash);
  if (model_vocab_rows > 0 && manifest_.max_token_id >= model_vocab_rows)
    fail("{}: the data uses token id {}, but the model's embedding has only {} rows", dir_, manifest_.max_token_id,
         model_vocab_rows);
}

int64_t Dataset::n_tokens(DataSplit s) const {
  return s == DataSplit::Train ? manifest_.train.n_tokens : manifest_.val.n_tokens;
}

std::span<const uint32_t> Dataset::document(DataSplit which, int64_t i) const {
  const Split& s = split(which);
  ARWKV_ASSERT(i >= 0 && i < n_documents(which), "document {} out of range", i);
  const Doc& d = s.docs[i];
  const auto* base = reinterpret_cast<const uint32_t*>(s.tokens[d.shard].data());
  return {base + d.begin, static_cast<size_t>(d.end - d.begin)};
}

std::span<const uint8_t> Dataset::document_mask(DataSplit which, int64_t i) const {
  const Split& s = split(which);
  ARWKV_ASSERT(i >= 0 && i < n_documents(which), "document {} out of range", i);
  if (s.masks.empty()) return {};
  const Doc& d = s.docs[i];
  return {s.masks[d.shard].data() + d.begin, static_cast<size_t>(d.end - d.begin)};
}

std::span<const float> Dataset::document_ref(DataSplit which, int64_t i) const {
  const Split& s = split(which);
  ARWKV_ASSERT(i >= 0 && i < n_documents(which), "document {} out of range", i);
  if (s.refs.empty()) return {};
  const Doc& d = s.docs[i];
  return {reinterpret_cast<const float*>(s.refs[d.shard].data()) + d.begin, static_cast<size_t>(d.end - d.begin)};
}

BatchIterator::BatchIterator(const Dataset& data, DataSplit split, const BatchOptions& opt, DataCursor start)
    : data_(data), split_(split), opt_(opt), cursor_(start) {
  if (opt.batch < 1 || opt.seq_len < 1)
    fail("{}: batch size {} and sequence length {} must be positive", data.dir(), opt.batch, opt.seq_len);
  const auto n = static_cast<uint64_t>(units());
  if (n == 0) fail("{}: the {} split has no documents", data.dir(), data_split_name(split));
  if (data.manifest().pairs && opt.batch % 2 != 0)
    fail("{}: preference data needs an even batch (rows are chosen/rejected pairs), not {}", data.dir(), opt.batch);
  if (data.manifest().pairs && start.offset != 0)
    fail("{}: data cursor offset {} in preference data (rows start at documents)", data.dir(), start.offset);
  if (start.index >= n || start.offset >= data.document(split, document_at(start.epoch, start.index)).size())
    fail("{}: data cursor (epoch {}, index {}, offset {}) is outside the {} split", data.dir(), start.epoch,
         start.index, start.offset, data_split_name(split));
}

const std::vector<int64_t>& BatchIterator::order(uint64_t epoch) {
  if (epoch != order_epoch_) {
    const int64_t n = units();
    if (opt_.shuffle) {
      order_ = seeded_permutation(n, opt_.seed, epoch);
    } else {
      order_.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) order_[i] = i;
    }
    order_epoch_ = epoch;
  }
  return order_;
}

int64_t BatchIterator::units() const {
  const int64_t n = data_.n_documents(split_);
  return data_.manifest().pairs ? n / 2 : n;
}

int64_t BatchIterator::document_at(uint64_t epoch, uint64_t index) {
  const int64_t u = order(epoch).at(index);
  return data_.manifest().pairs ? 2 * u : u;
}

void BatchIterator::next_pairs(Batch& out) {
  const int64_t B = opt_.batch, row = opt_.seq_len + 1;
  const auto n_docs = static_cast<uint64_t>(data_.n_documents(split_)), n_pairs = n_docs / 2;
  out.ref.assign(static_cast<size_t>(B * row), 0.0f);
  for (int64_t b = 0; b < B; b += 2) {
    const auto pair = static_cast<uint64_t>(order(cursor_.epoch)[cursor_.index]);
    for (int64_t k = 0; k < 2; ++k) {
      const auto doc = static_cast<int64_t>(2 * pair + k);
      const std::span<const uint32_t> ids = data_.document(split_, doc);
      const std::span<const uint8_t> mask = data_.document_mask(split_, doc);
      const std::span<const float> ref = data_.document_ref(split_, doc);
      const int64_t take = std::min<int64_t>(static_cast<int64_t>(ids.size()), row);
      const auto doc_id = static_cast<int64_t>(cursor_.epoch * n_docs + 2 * cursor_.index + k);
      const int64_t r0 = (b + k) * row;
      for (int64_t t = 0; t < row; ++t) {
        const bool in = t < take;
        out.tokens[r0 + t] = in ? static_cast<int32_t>(ids[t]) : 0;
        out.doc_ids[r0 + t] = in ? doc_id : -1 - (b + k);  // padding: an id no document has
        out.mask[r0 + t] = in ? mask[t] : 0;
        out.ref[r0 + t] = in ? ref[t] : 0.0f;
      }
    }
    if (++cursor_.index == n_pairs) cursor_.index = 0, ++cursor_.epoch;
  }
}

void batch_rows(const Batch& from, int64_t b0, int64_t b1, Batch& out) {
  ARWKV_ASSERT(0 <= b0 && b0 < b1 && b1 <= from.B, "rows [{}, {}) of a batch of {}", b0, b1, from.B);
  const auto lo = static_cast<size_t>(from.at(b0, 0)), hi = static_cast<size_t>(from.at(b1, 0));
  out.B = b1 - b0;
  out.T = from.T;
  out.tokens.assign(from.tokens.begin() + lo, from.tokens.begin() + hi);
  out.doc_ids.assign(from.doc_ids.begin() + lo, from.doc_ids.begin() + hi);
  out.mask.assign(from.mask.begin() + lo, from.mask.begin() + hi);
  if (from.ref.empty()) out.ref.clear();
  else out.ref.assign(from.ref.begin() + lo, from.ref.begin() + hi);
  out.start = from.start;
}

void BatchIterator::next(Batch& out) {
  const int64_t B = opt_.batch, row = opt_.seq_len + 1;
  const auto n_docs = static_cast<uint64_t>(data_.n_documents(split_));
  out.B = B;
  out.T = opt_.seq_len;
  out.start = cursor_;
  out.tokens.resize(static_cast<size_t>(B * row));
  out.doc_ids.resize(out.tokens.size());
  out.mask.resize(out.tokens.size());
  if (data_.manifest().pairs) return next_pairs(out);
  out.ref.clear();
  for (int64_t filled = 0; filled < B * row;) {
    const int64_t doc = order(cursor_.epoch)[cursor_.index];
    const std::span<const uint32_t> ids = data_.document(split_, doc);
    const std::span<const uint8_t> mask = data_.document_mask(split_, doc);
    const int64_t take = std::min<int64_t>(static_cast<int64_t>(ids.size() - cursor_.offset), B * row - filled);
    const auto doc_id = static_cast<int64_t>(cursor_.epoch * n_docs + cursor_.index);
    for (int64_t k = 0; k < take; ++k) {
      const size_t src = cursor_.offset + k;
      out.tokens[filled + k] = static_cast<int32_t>(ids[src]);
      out.doc_ids[filled + k] = doc_id;
      out.mask[filled + k] = mask.empty() ? 1 : mask[src];
    }
    filled += take;
    cursor_.offset += take;
    if (cursor_.offset == ids.size()) {
      cursor_.offset = 0;
      if (++cursor_.index == n_docs) cursor_.index = 0, ++cursor_.epoch;
    }
  }
  if (const int32_t bos = data_.manifest().bos; bos >= 0)
    for (int64_t b = 0; b < B; ++b) out.tokens[static_cast<size_t>(b * row)] = bos;
}

}  // namespace arwkv
