// Building a data directory (see data_writer.h).
#include "data/data_writer.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "data/corpus_reader.h"
#include "data/shuffle.h"
#include "data/tokenize_doc.h"
#include "formats/file_util.h"

namespace arwkv {

namespace fs = std::filesystem;
static_assert(std::endian::native == std::endian::little, "data shards are written in host order");

namespace {

// Every tokenized document, in input order.
struct Corpus {
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> offsets{0};
  std::vector<uint8_t> mask;  // per token once any chat was seen (plain text all 1)
  std::vector<uint8_t> is_chat;
  std::vector<float> ref;  // preference data: per token
  bool pairs = false;
  int64_t max_id = -1;

  int64_t n_documents() const { return static_cast<int64_t>(is_chat.size()); }

  void add(const TokenizedDocument& d) {
    if (d.ids.empty()) return;
    const bool chat = !d.mask.empty();
    if (chat && mask.empty()) mask.assign(tokens.size(), 1);
    for (int32_t id : d.ids) {
      tokens.push_back(static_cast<uint32_t>(id));
      max_id = std::max<int64_t>(max_id, id);
    }
    if (chat)
      mask.insert(mask.end(), d.mask.begin(), d.mask.end());
    else if (!mask.empty())
      mask.resize(tokens.size(), 1);
    offsets.push_back(tokens.size());
    is_chat.push_back(chat);
  }

  void add(const ScoredDocument& d, const std::string& what) {
    if (d.ids.empty() || d.mask.size() != d.ids.size() || d.ref.size() != d.ids.size())
      fail("pairs: {}: {} tokens with {} mask and {} reference values", what, d.ids.size(), d.mask.size(), d.ref.size());
    if (mask.empty()) mask.assign(tokens.size(), 1);
    add(TokenizedDocument{d.ids, d.mask});
    ref.insert(ref.end(), d.ref.begin(), d.ref.end());
  }
};

// Tokenizes documents in batches, several at once, appending them to the corpus in order.
class Tokenizing {
 public:
  Tokenizing(const Tokenizer& tok, int threads, Corpus& corpus, std::vector<DataInput>& inputs)
      : tok_(tok), threads_(threads > 0 ? threads : omp_get_max_threads()), corpus_(corpus), inputs_(inputs) {}

  void push(RawDocument&& d) {
    bytes_ += d.text.size();
    for (const ChatMessage& m : d.messages) bytes_ += m.content.size();
    pending_bytes_ += d.text.size() + 64 * d.messages.size();
    pending_.push_back(std::move(d));
    if (pending_.size() >= 1024 || pending_bytes_ >= (size_t{4} << 20)) flush();
  }

  void flush() {
    const auto n = static_cast<int64_t>(pending_.size());
    std::vector<TokenizedDocument> out(pending_.size());
    std::vector<std::exception_ptr> errors(pending_.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (n > 1 && threads_ > 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        const RawDocument& d = pending_[i];
        out[i] = d.is_chat() ? tokenize_chat(tok_, d.messages, d.source) : tokenize_text(tok_, d.text);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (errors[i]) std::rethrow_exception(errors[i]);
      corpus_.add(out[i]);
      DataInput& in = inputs_[pending_[i].input];
      in.n_documents += out[i].ids.empty() ? 0 : 1;
      in.n_tokens += static_cast<int64_t>(out[i].ids.size());
    }
    pending_.clear();
    pending_bytes_ = 0;
  }

  int64_t bytes() const { return bytes_; }

 private:
  const Tokenizer& tok_;
  int threads_;
  Corpus& corpus_;
  std::vector<DataInput>& inputs_;
  std::vector<RawDocument> pending_;
  size_t pending_bytes_ = 0;
  int64_t bytes_ = 0;
};

fs::path check_out_dir(const std::string& dir, bool force) {
  fs::path out(dir);
  if (out.filename().empty()) out = out.parent_path();
  if (out.empty()) fail("data: no output directory given");
  if (fs::exists(out)) {
    if (!fs::is_directory(out)) fail("{}: exists and is not a directory", out.string());
    if (!fs::is_empty(out) && !force)
      fail("{}: the directory exists and is not empty (--force replaces it)", out.string());
  }
  return out;
}

// Writes the documents of one split (in corpus order) as shards under dir.
DataSplitInfo write_split(const Corpus& c, const std::vector<bool>& is_val, bool want_val, const std::string& split,
                          int64_t shard_tokens, const fs::path& dir) {
  DataSplitInfo info;
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> offsets{0};
  std::vector<uint8_t> mask;
  std::vector<float> ref;
  auto close_shard = [&] {
    if (offsets.size() == 1) return;
    DataShard s{data_shard_file(split, info.shards.size(), "tokens"), data_shard_file(split, info.shards.size(), "docs"),
                c.mask.empty() ? "" : data_shard_file(split, info.shards.size(), "mask"),
                c.pairs ? data_shard_file(split, info.shards.size(), "ref") : "",
                static_cast<int64_t>(offsets.size() - 1), static_cast<int64_t>(tokens.size())};
    auto put = [&](const std::string& name, const void* p, size_t n) {
      const std::string path = (dir / name).string();
      std::FILE* f = std::fopen(path.c_str(), "wb");
      if (!f) fail("{}: cannot create {}", dir.string(), name);
      try {
        write_bytes(f, p, n, path);
      } catch (...) {
        std::fclose(f);
        throw;
      }
      if (std::fclose(f) != 0) fail("{}: write failed", path);
    };
    put(s.tokens_file, tokens.data(), tokens.size() * sizeof(uint32_t));
    put(s.docs_file, offsets.data(), offsets.size() * sizeof(uint64_t));
    if (!s.mask_file.empty()) put(s.mask_file, mask.data(), mask.size());
    if (!s.ref_file.empty()) put(s.ref_file, ref.data(), ref.size() * sizeof(float));
    info.shards.push_back(s);
    tokens.clear();
    offsets.assign(1, 0);
    mask.clear();
    ref.clear();
  };
  for (int64_t d = 0; d < c.n_documents(); ++d) {
    if (is_val[d] != want_val) continue;
    const uint64_t b = c.offsets[d], e = c.offsets[d + 1];
    tokens.insert(tokens.end(), c.tokens.begin() + b, c.tokens.begin() + e);
    offsets.push_back(tokens.size());
    if (!c.mask.empty()) {
      mask.insert(mask.end(), c.mask.begin() + b, c.mask.begin() + e);
      info.n_mask_tokens += std::count(c.mask.begin() + b, c.mask.begin() + e, uint8_t{1});
    } else {
      info.n_mask_tokens += static_cast<int64_t>(e - b);
    }
    info.n_documents += 1;
    info.n_tokens += static_cast<int64_t>(e - b);
    if (c.pairs) ref.insert(ref.end(), c.ref.begin() + b, c.ref.begin() + e);
    info.n_chat_documents += c.is_chat[d];
    // A pair's two documents stay in one shard.
    if (static_cast<int64_t>(tokens.size()) >= shard_tokens && (!c.pairs || (offsets.size() - 1) % 2 == 0)) close_shard();
  }
  close_shard();
  return info;
}

void write_directory(const Corpus& c, DataManifest& m, const fs::path& dir) {
  std::vector<bool> is_val;
  if (c.pairs) {  // pairs go to validation whole
    const std::vector<bool> pair_val = choose_validation(c.n_documents() / 2, m.val_fraction, m.seed);
    for (int64_t d = 0; d < c.n_documents(); ++d) is_val.push_back(pair_val[d / 2]);
  } else {
    is_val = choose_validation(c.n_documents(), m.val_fraction, m.seed);
  }
  m.train = write_split(c, is_val, false, "train", m.shard_tokens, dir);
  m.val = write_split(c, is_val, true, "val", m.shard_tokens, dir);
  const std::string text = m.to_json().dump(1) + "\n";
  write_file_atomically((dir / kDataManifestName).string(), [&](std::FILE* f) { std::fputs(text.c_str(), f); });
}

// A manifest before any document: the tokenizer's identity and the split and shard settings.
DataManifest new_manifest(const Tokenizer& tokenizer, uint64_t seed, double val_fraction, int64_t shard_tokens) {
  DataManifest m;
  m.tokenizer = tokenizer_identity(tokenizer);
  m.bos = tokenizer.add_bos() ? tokenizer.bos_id() : -1;
  m.seed = seed;
  m.val_fraction = val_fraction;
  m.shard_tokens = shard_tokens;
  return m;
}

// Writes the directory into a temporary sibling and renames it onto out; nothing is left on error.
void write_atomically(const Corpus& corpus, DataManifest& m, const fs::path& out) {
  write_directory_atomically(out.string(), "the data directory",
                             [&](const std::string& tmp) { write_directory(corpus, m, tmp); });
}

}  // namespace

std::vector<bool> choose_validation(int64_t n, double fraction, uint64_t seed) {
  int64_t n_val = std::llround(static_cast<double>(n) * fraction);
  if (fraction > 0 && n >= 2) n_val = std::max<int64_t>(n_val, 1);
  n_val = std::clamp<int64_t>(n_val, 0, std::max<int64_t>(n - 1, 0));
  const std::vector<int64_t> p = seeded_permutation(n, seed, 0x76616cull);
  std::vector<bool> is_val(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n_val; ++i) is_val[p[i]] = true;
  return is_val;
}

DataReport build_dataset(const Tokenizer& tokenizer, const DataOptions& o) {
  if (o.inputs.empty()) fail("data: no inputs given");
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0))
    fail("data: --val-fraction {} must be in [0, 1)", o.val_fraction);
  if (o.shard_tokens < 1) fail("data: --shard-tokens {} must be positive", o.shard_tokens);
  const fs::path out = check_out_dir(o.out, o.force);
  const auto t0 = std::chrono::steady_clock::now();

  DataManifest m = new_manifest(tokenizer, o.seed, o.val_fraction, o.shard_tokens);
  Corpus corpus;
  Tokenizing tok(tokenizer, o.threads, corpus, m.inputs);
  int64_t last_report = 0;
  read_corpus(o.inputs, {o.split_paragraphs}, [&](RawDocument&& d) {
    tok.push(std::move(d));
    if (o.progress && tok.bytes() - last_report >= (int64_t{8} << 20)) {
      last_report = tok.bytes();
      o.progress({corpus.n_documents(), static_cast<int64_t>(corpus.tokens.size()), tok.bytes()});
    }
  }, m.inputs);
  tok.flush();
  if (corpus.n_documents() == 0) fail("data: the corpus is empty: the inputs hold no text");
  m.has_masks = !corpus.mask.empty();
  m.max_token_id = corpus.max_id;

  write_atomically(corpus, m, out);
  DataReport r;
  r.manifest = std::move(m);
  r.text_bytes = tok.bytes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

DataReport write_pair_dataset(const Tokenizer& tokenizer, const std::vector<PreferencePair>& pairs,
                              const PairDataOptions& o) {
  if (pairs.empty()) fail("pairs: no pairs to write");
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0))
    fail("pairs: the validation fraction {} must be in [0, 1)", o.val_fraction);
  const fs::path out = check_out_dir(o.out, o.force);
  const auto t0 = std::chrono::steady_clock::now();
  DataManifest m = new_manifest(tokenizer, o.seed, o.val_fraction, int64_t{1} << 24);
  m.pairs = true;
  m.has_masks = true;
  Corpus corpus;
  corpus.pairs = true;
  for (size_t i = 0; i < pairs.size(); ++i) {
    corpus.add(pairs[i].chosen, fmt::format("pair {}, chosen", i));
    corpus.add(pairs[i].rejected, fmt::format("pair {}, rejected", i));
  }
  m.max_token_id = corpus.max_id;
  DataInput in = o.input;
  in.n_documents = corpus.n_documents();
  in.n_tokens = static_cast<int64_t>(corpus.tokens.size());
  m.inputs.push_back(in);
  write_atomically(corpus, m, out);
  DataReport r;
  r.manifest = std::move(m);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace arwkv
