// Training data, bad inputs: each is a clear error naming the file (file:line for JSONL) and leaves
// neither the output directory nor a temporary one behind; through the library and the program.
// Also the programs themselves: `arwkv data` end to end, and `arwkv chatgen` on the tiny llama
// fixture given a ChatML template (reproducible per seed, in pieces with --skip and --limit, chat
// JSONL that `arwkv data` reads).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "data/data_writer.h"
#include "data/dataset.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer_json_writer.h"
#include "model/test_data_util.h"

namespace fs = std::filesystem;
using namespace arwkv;
using arwkv::test::TempDir;

namespace {

// build_dataset must throw an Error whose message contains want, and write nothing.
void expect_refused(const TempDir& t, const std::vector<std::string>& inputs, const std::string& want) {
  const Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  DataOptions o;
  o.inputs = inputs;
  o.out = (t.path / "out").string();
  try {
    build_dataset(tok, o);
    ADD_FAILURE() << "no error; wanted one containing " << want;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  EXPECT_TRUE(t.nothing_named("out")) << want;
}

struct Result {
  int status;
  std::string output;
};

Result run(const std::string& args) {
  Result r{0, {}};
  std::FILE* p = ::popen((arwkv::test::arwkv_bin() + " " + args + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST(DataErrors, MalformedJsonlNamesFileAndLine) {
  TempDir t;
  const std::string good = t.write("good.txt", "some text");
  const std::string bad = t.write("bad.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"\n{\"text\": \"c\"}\n");
  expect_refused(t, {good, bad}, bad + ":3: malformed JSON");
  const std::string nofield = t.write("nofield.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n");
  expect_refused(t, {nofield}, nofield + ":2: the object has neither");
  const std::string badchat = t.write("badchat.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": 3}]}\n");
  expect_refused(t, {badchat}, badchat + ":1: message 0");
  const std::string notobj = t.write("notobj.jsonl", "[1, 2]\n");
  expect_refused(t, {notobj}, notobj + ":1:");
}

TEST(DataErrors, MissingEmptyAndCorruptInputs) {
  TempDir t;
  const std::string missing = (t.path / "nope.txt").string();
  expect_refused(t, {t.write("ok.txt", "fine"), missing}, missing + ": no such file");
  expect_refused(t, {t.write("blank.txt", " \n\t\n"), t.write("e.jsonl", "\n\n")}, "the corpus is empty");
  const std::string gz = t.write("broken.txt.gz", "this is not gzip data");
  expect_refused(t, {gz}, gz + ": gzip could not decompress");
  const std::string chat = t.write("chat.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
  TokenizerData no_template = load_tokenizer_json(arwkv::test::data_path("tokenizer/tiny_tokenizer.json"));
  DataOptions o;
  o.inputs = {chat};
  o.out = (t.path / "out").string();
  EXPECT_THROW(build_dataset(Tokenizer(std::move(no_template)), o), Error);
  EXPECT_TRUE(t.nothing_named("out"));
}

TEST(DataErrors, ExistingOutputIsKeptWithoutForce) {
  TempDir t;
  const Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  const std::string keep = t.write("out/keep.txt", "precious");
  DataOptions o;
  o.inputs = {t.write("in.txt", "text")};
  o.out = (t.path / "out").string();
  EXPECT_THROW(build_dataset(tok, o), Error);
  EXPECT_TRUE(fs::exists(keep));
  o.force = true;
  build_dataset(tok, o);
  EXPECT_FALSE(fs::exists(keep));
  EXPECT_EQ(Dataset::open(o.out).n_documents(DataSplit::Train), 1);
  EXPECT_THROW(Dataset::open((t.path / "in.txt").string()), Error);
}

TEST(DataErrors, CorruptShardIsRefusedOnOpen) {
  TempDir t;
  const Tokenizer tok = arwkv::test::tiny_chat_tokenizer();
  DataOptions o;
  o.inputs = {t.write("in.txt", "some words to tokenize")};
  o.out = (t.path / "out").string();
  o.val_fraction = 0;
  build_dataset(tok, o);
  fs::resize_file(t.path / "out/train-00000.tokens", 4);
  EXPECT_THROW(Dataset::open(o.out), Error);
}

TEST(DataCli, DataCommandWritesAndRefuses) {
  TempDir t;
  const std::string tok = arwkv::test::data_path("tokenizer/tiny_tokenizer.json");
  const std::string in = t.write("in/a.txt", "one\n\ntwo\n\nthree\n\nfour");
  const std::string out = (t.path / "out").string();
  Result r = run("data --tokenizer " + tok + " --out " + out + " --split-paragraphs --val-fraction 0.25 --seed 3 " +
                 (t.path / "in").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("tokens/s"), std::string::npos) << r.output;
  const Dataset ds = Dataset::open(out);
  EXPECT_EQ(ds.n_documents(DataSplit::Train), 3);
  EXPECT_EQ(ds.n_documents(DataSplit::Val), 1);

  const std::string bad = t.write("bad.jsonl", "{\"text\": \"fine\"}\n{oops}\n");
  r = run("data --tokenizer " + tok + " --out " + (t.path / "out2").string() + " " + bad);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(bad + ":2: malformed JSON"), std::string::npos) << r.output;
  EXPECT_TRUE(t.nothing_named("out2"));
}

// The tiny llama fixture as an HF directory whose tokenizer (from its GGUF) has a ChatML template.
std::string tiny_chat_model(const TempDir& t) {
  const std::string src = arwkv::test::data_path("teacher/llama_tiny");
  TokenizerData d = tokenizer_data_from_gguf(*GgufFile::open(src + "/model-f32.gguf"));
  d.chat_template = arwkv::test::kChatml;
  const fs::path dir = t.path / "model";
  fs::create_directories(dir);
  write_tokenizer_files(d, dir.string());
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    fs::copy_file(fs::path(src) / f, dir / f);
  return dir.string();
}

TEST(DataCli, ChatgenAnswersPromptsAsChatJsonl) {
  TempDir t;
  const std::string model = tiny_chat_model(t);
  const std::string prompts = t.write("prompts.txt", "What is Perl?\n\nName a colour.\r\nWhy?\n");
  const std::string out = (t.path / "chat.jsonl").string();
  const std::string args = "chatgen -m " + model + " --prompts " + prompts + " --out " + out +
                           " -n 6 --keep-truncated --temperature 0.8 --limit 2 --seed 4";
  Result r = run(args);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(out);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["messages"][0], (nlohmann::json{{"role", "user"}, {"content", "What is Perl?"}}));
  EXPECT_EQ(lines[1]["messages"][0]["content"], "Name a colour.");
  EXPECT_EQ(lines[1]["messages"][1]["role"], "assistant");
  EXPECT_EQ(lines[1]["messages"].size(), 2u);
  EXPECT_FALSE(fs::exists(out + ".partial"));

  // Same seed, same replies; another seed, other replies; the result is chat data for `arwkv data`.
  auto slurp = [](const std::string& p) { std::ifstream f(p); return std::string(std::istreambuf_iterator<char>(f), {}); };
  const std::string first = slurp(out);
  ASSERT_EQ(run(args).status, 0);
  EXPECT_EQ(slurp(out), first);
  ASSERT_EQ(run(args + "1").status, 0);
  EXPECT_NE(slurp(out), first);
  // Two processes on consecutive ranges (--skip, --limit) write the lines of one, in two pieces.
  const std::string part_a = (t.path / "a.jsonl").string(), part_b = (t.path / "b.jsonl").string();
  const std::string three = "chatgen -m " + model + " --prompts " + prompts + " -n 6 --keep-truncated --temperature 0.8 --seed 4";
  ASSERT_EQ(run(three + " --out " + out).status, 0);
  ASSERT_EQ(run(three + " --limit 1 --out " + part_a).status, 0);
  ASSERT_EQ(run(three + " --skip 1 --out " + part_b).status, 0);
  EXPECT_EQ(slurp(part_a) + slurp(part_b), slurp(out));
  r = run(three + " --skip 3 --out " + part_b);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--skip 3 leaves none of its 3 prompts"), std::string::npos) << r.output;
  ASSERT_EQ(run(args).status, 0);
  r = run("data --tokenizer " + model + " --out " + (t.path / "d").string() + " --val-fraction 0 " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(Dataset::open((t.path / "d").string()).manifest().train.n_chat_documents, 2);

  // Without --keep-truncated, replies that hit the token limit are left out.
  r = run("chatgen -m " + model + " --prompts " + prompts + " --out " + out + " -n 1 --temperature 0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("0 conversations"), std::string::npos) << r.output;
}
