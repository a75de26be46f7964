// Tokenized data directories (src/data/dataset.cpp, data_format.cpp): manifest.json and the shards
// it names, opened as training opens them, checked against a tokenizer, and packed into batches.
// The input is the manifest, then any number of files, each introduced by the line
// "\n#next-file\n" and its name on the first line of the part.
//
// With ARWKV_FUZZ_WRITE_SEEDS=DIR the target writes inputs made from directories that `arwkv
// data` writes (plain text and chats, one or several shards per split) and `arwkv pairs` writes
// (preference data) into DIR and exits.
#include <algorithm>
#include <cctype>

#include "data/data_writer.h"
#include "data/dataset.h"
#include "fixtures.h"

using namespace arwkv;

namespace {

constexpr std::string_view kNext = "\n#next-file\n";

const std::filesystem::path& data_dir() {
  static const std::filesystem::path dir = fuzz::scratch_dir() / "data";
  return dir;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The packed input of a data directory: its manifest, then every other file.
std::string pack_directory(const std::string& dir) {
  std::string packed = read_file(std::filesystem::path(dir) / kDataManifestName);
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename() != kDataManifestName)
      packed += std::string(kNext) + e.path().filename().string() + "\n" + read_file(e.path());
  return packed;
}

void write_seeds(const std::string& out) {
  std::filesystem::create_directories(out);
  const std::string text = fuzz::write_scratch("corpus.txt", "Hello world.\n\nA second paragraph, 42 tokens or so.\n");
  const std::string chat = fuzz::write_scratch(
      "chat.jsonl",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}]}\n"
      "{\"text\": \"plain text in a JSONL file\"}\n");
  struct Seed {
    const char* name;
    std::vector<std::string> inputs;
    int64_t shard_tokens;
  };
  for (const Seed& s : {Seed{"text", {text}, 1 << 20}, Seed{"chat-shards", {text, chat}, 8}}) {
    DataOptions o;
    o.inputs = s.inputs;
    o.out = (fuzz::scratch_dir() / s.name).string();
    o.val_fraction = 0.5;
    o.shard_tokens = s.shard_tokens;
    o.split_paragraphs = true;
    o.threads = 1;
    build_dataset(fuzz::smollm2_tokenizer(), o);
    std::ofstream(out + "/" + s.name, std::ios::binary) << pack_directory(o.out);
  }
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 4; ++i)
    pairs.push_back({{{1, 2, 3 + i, 4}, {0, 0, 1, 1}, {0.0f, -1.5f, -2.0f, -0.5f}},
                     {{1, 2, 7, 8, 9 + i}, {0, 0, 1, 1, 1}, {0.0f, -1.5f, -3.0f, -2.5f, -1.0f}}});
  PairDataOptions p;
  p.out = (fuzz::scratch_dir() / "pairs").string();
  p.val_fraction = 0.25;
  p.force = true;
  p.input = {"chats.jsonl", "jsonl", 1, 0, 0};
  write_pair_dataset(fuzz::smollm2_tokenizer(), pairs, p);
  std::ofstream(out + "/pairs", std::ios::binary) << pack_directory(p.out);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("ARWKV_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  fuzz::smollm2_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::filesystem::remove_all(data_dir());
  std::filesystem::create_directories(data_dir());
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), kNext, 64);
  fuzz::write_scratch("data/manifest.json", parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t nl = parts[i].find('\n');
    const std::string_view name = parts[i].substr(0, nl);
    // At most 255 bytes: a longer name cannot be created (ENAMETOOLONG), which says nothing of the parser.
    const bool plain = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                       });
    if (nl == std::string_view::npos || !plain) continue;  // a name the manifest may give, but not a path
    fuzz::write_scratch("data/" + std::string(name), parts[i].substr(nl + 1));
  }
  fuzz::accepts([&] {
    const Dataset d = Dataset::open(data_dir().string());
    fuzz::accepts([&] { d.check_tokenizer(fuzz::smollm2_tokenizer(), 49152); });
    for (DataSplit split : {DataSplit::Train, DataSplit::Val}) {
      if (d.n_documents(split) == 0) continue;
      BatchIterator it(d, split, {2, 5, 1, true});
      Batch b;
      for (int i = 0; i < 3; ++i) it.next(b);
    }
  });
  return 0;
}
