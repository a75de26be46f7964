// Training data: `build_dataset` over a small corpus (text, paragraphs, JSONL, chat JSONL, gzip,
// directories) with the tiny fixture tokenizer, checked against the tokenizer's own encode of each
// document and the hand-rendered ChatML text; packed batches checked for exact coverage of an
// epoch, document boundaries and resumption from a saved cursor; bad inputs leave nothing behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "data/data_writer.h"
#include "data/dataset.h"
#include "data/tokenize_doc.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer_json_writer.h"
#include "model/test_data_util.h"

namespace fs = std::filesystem;
using namespace arwkv;
using arwkv::test::TempDir;
using arwkv::test::tiny_chat_tokenizer;

namespace {

std::string random_words(std::mt19937_64& rng, int n) {
  static const char* const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "über",
                                      "naïve", "42", "x+y", "def", "return", "(n)", "\t", "end."};
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += words[rng() % std::size(words)];
    s += rng() % 7 == 0 ? "\n" : " ";
  }
  return s + std::to_string(rng() % 1000);  // distinct documents
}

std::vector<uint32_t> as_u32(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
std::vector<uint32_t> as_vec(std::span<const uint32_t> s) { return {s.begin(), s.end()}; }

// Every stored document, train and val, must be one of the expected ones, each once, in input
// order within each split.
void expect_split_of(const Dataset& ds, const std::vector<std::vector<uint32_t>>& expected, int64_t n_val) {
  ASSERT_EQ(ds.n_documents(DataSplit::Train) + ds.n_documents(DataSplit::Val), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(ds.n_documents(DataSplit::Val), n_val);
  int64_t ti = 0, vi = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (ti < ds.n_documents(DataSplit::Train) && as_vec(ds.document(DataSplit::Train, ti)) == expected[i])
      ++ti;
    else if (vi < ds.n_documents(DataSplit::Val) && as_vec(ds.document(DataSplit::Val, vi)) == expected[i])
      ++vi;
    else
      FAIL() << "document " << i << " is in neither split at its place";
  }
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST(Data, TokenizesEachDocumentLikeEncode) {
  const Tokenizer tok = tiny_chat_tokenizer();
  TempDir t;
  std::mt19937_64 rng(7);
  std::vector<std::string> docs;
  std::vector<std::string> inputs;
  for (int i = 0; i < 5; ++i) t.write(fmt::format("corpus/{}/f{}.txt", i % 2 ? "b" : "a", i), random_words(rng, 20 + 13 * i));
  for (const char* p : {"corpus/a/f0.txt", "corpus/a/f2.txt", "corpus/a/f4.txt", "corpus/b/f1.txt", "corpus/b/f3.txt"})
    docs.push_back(read_bytes(t.path / p));  // a directory is read in sorted path order
  t.write("corpus/a/binary.dat", std::string("\0\1\2 not text", 13));
  t.write("corpus/.hidden.txt", "hidden");
  inputs.push_back((t.path / "corpus").string());
  std::string jsonl;
  for (int i = 0; i < 6; ++i) {
    docs.push_back(random_words(rng, 5 + 7 * i));
    jsonl += nlohmann::json{{"text", docs.back()}}.dump() + (i == 2 ? "\n\n" : "\n");
  }
  inputs.push_back(t.write("lines.jsonl", jsonl));
  docs.push_back(random_words(rng, 60));
  const std::string gz = t.write("packed.txt", docs.back());
  ASSERT_EQ(std::system(("gzip -f " + gz).c_str()), 0);
  inputs.push_back(gz + ".gz");

  std::vector<std::vector<uint32_t>> expected;
  for (const std::string& d : docs) expected.push_back(as_u32(tok.encode(d, false)));
  DataOptions o;
  o.inputs = inputs;
  o.out = (t.path / "out").string();
  o.val_fraction = 0.25;
  o.seed = 11;
  o.shard_tokens = 50;  // several shards
  const DataReport r = build_dataset(tok, o);
  const Dataset ds = Dataset::open(o.out);
  expect_split_of(ds, expected, std::llround(docs.size() * 0.25));
  EXPECT_GT(ds.manifest().train.shards.size(), 2u);
  EXPECT_FALSE(ds.manifest().has_masks);
  ASSERT_EQ(ds.manifest().inputs.size(), 3u);
  EXPECT_EQ(ds.manifest().inputs[0].n_files, 5);
  EXPECT_EQ(ds.manifest().inputs[1].n_documents, 6);
  EXPECT_NO_THROW(ds.check_tokenizer(tok, tok.vocab_size()));
  EXPECT_THROW(ds.check_tokenizer(tok, 10), Error);

  // Deterministic: the same seed writes the same bytes; another seed another split.
  o.out = (t.path / "again").string();
  build_dataset(tok, o);
  for (const auto& e : fs::directory_iterator(t.path / "out"))
    EXPECT_EQ(read_bytes(e.path()), read_bytes(t.path / "again" / e.path().filename())) << e.path();
  o.out = (t.path / "other").string();
  o.seed = 12;
  build_dataset(tok, o);
  auto val_docs = [](const Dataset& d) {
    std::vector<std::vector<uint32_t>> v;
    for (int64_t i = 0; i < d.n_documents(DataSplit::Val); ++i) v.push_back(as_vec(d.document(DataSplit::Val, i)));
    return v;
  };
  EXPECT_EQ(val_docs(Dataset::open((t.path / "again").string())), val_docs(ds));
  EXPECT_NE(val_docs(Dataset::open(o.out)), val_docs(ds));
}

TEST(Data, SplitParagraphs) {
  const Tokenizer tok = tiny_chat_tokenizer();
  TempDir t;
  const std::string text = "\n\nfirst block\nstill first\n  \t\nsecond\n\n\n\nthird block.\n";
  DataOptions o;
  o.inputs = {t.write("p.txt", text)};
  o.out = (t.path / "out").string();
  o.val_fraction = 0;
  o.split_paragraphs = true;
  build_dataset(tok, o);
  const Dataset ds = Dataset::open(o.out);
  expect_split_of(ds, {as_u32(tok.encode("first block\nstill first", false)), as_u32(tok.encode("second", false)),
                       as_u32(tok.encode("third block.", false))}, 0);
}

TEST(Data, ChatMaskCoversAssistantContentAndImEnd) {
  const Tokenizer tok = tiny_chat_tokenizer();
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."},
                                         {"user", "What is a fox?"},
                                         {"assistant", "A small wild dog."},
                                         {"user", "And <|im_end|> here?"},
                                         {"assistant", "Quick brown\n\nfoxes jump over 12 dogs!"}};
  const std::string rendered =
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is a fox?<|im_end|>\n"
      "<|im_start|>assistant\nA small wild dog.<|im_end|>\n<|im_start|>user\nAnd <|im_end|> here?<|im_end|>\n"
      "<|im_start|>assistant\nQuick brown\n\nfoxes jump over 12 dogs!<|im_end|>\n";
  const TokenizedDocument d = tokenize_chat(tok, msgs, "test");
  EXPECT_EQ(d.ids, tok.encode(rendered, true));
  ASSERT_EQ(d.mask.size(), d.ids.size());
  std::vector<std::string> runs;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    if (!d.mask[i]) continue;
    if (i == 0 || !d.mask[i - 1]) runs.emplace_back();
    runs.back() += tok.token_text(d.ids[i]);
  }
  EXPECT_EQ(runs, (std::vector<std::string>{"A small wild dog.<|im_end|>",
                                            "Quick brown\n\nfoxes jump over 12 dogs!<|im_end|>"}));
}

TEST(Data, ChatMaskWithRealTeacherTemplate) {
  const std::string gguf = test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  ARWKV_REQUIRE_FILE(gguf);
  const std::unique_ptr<Tokenizer> tok = open_tokenizer(gguf);
  const std::vector<ChatMessage> msgs = {{"user", "Name a colour."}, {"assistant", "Blue, like the sky."}};
  const std::string rendered =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue, like the sky.<|im_end|>\n";
  const TokenizedDocument d = tokenize_chat(*tok, msgs, "test");
  EXPECT_EQ(d.ids, tok->encode(rendered, true));
  std::string masked;
  for (size_t i = 0; i < d.ids.size(); ++i)
    if (d.mask[i]) masked += tok->token_text(d.ids[i]);
  EXPECT_EQ(masked, "Blue, like the sky.<|im_end|>");
  EXPECT_EQ(std::count(d.mask.begin(), d.mask.end(), 1), 7);  // Blue , like the sky . <|im_end|>
}

TEST(Data, ChatJsonlStoresMasks) {
  const Tokenizer tok = tiny_chat_tokenizer();
  TempDir t;
  const std::string chat = R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello you"}]})";
  DataOptions o;
  o.inputs = {t.write("c.jsonl", chat + "\n" + R"({"text": "plain words"})" + "\n")};
  o.out = (t.path / "out").string();
  o.val_fraction = 0;
  build_dataset(tok, o);
  const Dataset ds = Dataset::open(o.out);
  ASSERT_TRUE(ds.manifest().has_masks);
  ASSERT_EQ(ds.n_documents(DataSplit::Train), 2);
  EXPECT_EQ(ds.manifest().train.n_chat_documents, 1);
  const TokenizedDocument expect = tokenize_chat(tok, {{"user", "hi"}, {"assistant", "hello you"}}, "test");
  EXPECT_EQ(as_vec(ds.document(DataSplit::Train, 0)), as_u32(expect.ids));
  const auto mask0 = ds.document_mask(DataSplit::Train, 0);
  EXPECT_EQ(std::vector<uint8_t>(mask0.begin(), mask0.end()), expect.mask);
  const auto mask1 = ds.document_mask(DataSplit::Train, 1);  // plain text: every token may be a target
  EXPECT_EQ(std::count(mask1.begin(), mask1.end(), 1), static_cast<int64_t>(tok.encode("plain words", false).size()));
}

// A GGUF tokenizer with UNUSED padding entries, CONTROL and USER_DEFINED tokens (as llama.cpp writes
// Qwen2.5's: 271 "[PAD…]" rows and 22 added tokens) keeps its identity when it is written to
// tokenizer.json and read back, which is how a converted student carries it: data tokenized from the
// GGUF is accepted by the student.
TEST(Data, GgufTokenizerIdentitySurvivesTokenizerJson) {
  const auto gguf = GgufFile::open(test::data_path("teacher/qwen2_tiny/model-f32.gguf"));
  TokenizerData d = tokenizer_data_from_gguf(*gguf);
  const int32_t n = static_cast<int32_t>(d.tokens.size());
  auto add = [&](const std::string& text, TokenType type) {
    d.tokens.push_back(text);
    d.token_types.push_back(type);
    const int32_t id = static_cast<int32_t>(d.tokens.size()) - 1;
    if (type == TokenType::Control || type == TokenType::UserDefined)
      d.added_tokens.push_back({id, text, type == TokenType::Control, false, false});
  };
  add("<|ctl_a|>", TokenType::Control);
  add("<tool_call>", TokenType::UserDefined);
  for (int i = 0; i < 5; ++i) add(fmt::format("[PAD{}]", n + 2 + i), TokenType::Unused);
  add("<|ctl_b|>", TokenType::Control);  // an added token after the padding
  const Tokenizer original(d);

  test::TempDir dir;
  write_tokenizer_files(d, dir.path.string());
  const Tokenizer back(load_tokenizer_json((dir.path / "tokenizer.json").string()));
  EXPECT_EQ(tokenizer_identity(back).vocab_hash, tokenizer_identity(original).vocab_hash);
  for (const char* text : {"<|ctl_a|>hello<tool_call> world<|ctl_b|>", "[PAD302] stays text"})
    EXPECT_EQ(back.encode(text, true), original.encode(text, true)) << text;

  // A vocabulary that does differ still differs.
  d.tokens[5] += "x";
  EXPECT_NE(tokenizer_identity(Tokenizer(d)).vocab_hash, tokenizer_identity(original).vocab_hash);
}

// The same for the real Qwen2.5 teacher when it has been fetched (scripts/fetch_models.sh qwen2.5-0.5b).
TEST(Data, QwenGgufTokenizerIdentitySurvivesTokenizerJson) {
  const std::string path = test::model_path("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf");
  ARWKV_REQUIRE_FILE(path);
  const TokenizerData d = tokenizer_data_from_gguf(*GgufFile::open(path));
  test::TempDir dir;
  write_tokenizer_files(d, dir.path.string());
  const Tokenizer back(load_tokenizer_json((dir.path / "tokenizer.json").string()));
  EXPECT_EQ(tokenizer_identity(back).vocab_hash, tokenizer_identity(Tokenizer(d)).vocab_hash);
}
