// tokenizer.json writer: a tokenizer written from GGUF metadata (or re-written from a tokenizer.json)
// and read back by load_tokenizer_json gives the same ids as the original on varied text (the
// golden texts, random bytes, special tokens), with the same special ids and chat template; the
// written document has the structure HF `tokenizers` expects.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json_writer.h"

namespace arwkv {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / fmt::format("arwkv_tokjson_{}_{}", tag, ::testing::UnitTest::GetInstance()->random_seed());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

std::vector<std::string> sample_texts() {
  std::vector<std::string> texts = {
      "Hello, world! It's 2024 and we're testing   spaces\tand\ttabs.\n\nNew paragraph",
      "<|im_start|>user\nWhat is 12345 + 678?<|im_end|>\n<|im_start|>assistant\n",
      "Ünïcödé façade — naïve café; 日本語のテキスト、中文，한국어 😀🎉",
      "e\xcc\x81 (decomposed) vs \xc3\xa9 (composed)",
      "    indented code:\n\tif (x) { return y; }\r\n",
      "I'LL SAY IT'S FINE, they'd've thought", "", " ", "\n\n\n", "<|endoftext|><|endoftext|>x"};
  for (const char* name : {"smollm2", "gemma3"}) {
    const json goldens = json::parse(std::ifstream(test::data_path(std::string("tokenizer/") + name + "_goldens.json")));
    for (const json& c : goldens.at("cases")) texts.push_back(c.at("text"));
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::string s(1 + rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    texts.push_back(s);
  }
  return texts;
}

// Writes `data`, reads it back, and checks the read tokenizer against the original one.
void check_round_trip(const TokenizerData& data, const std::string& tag) {
  TempDir dir(tag);
  write_tokenizer_files(data, dir.str());
  const TokenizerData back = load_tokenizer_json(dir.str() + "/tokenizer.json");
  EXPECT_EQ(back.bos_id, data.bos_id);
  EXPECT_EQ(back.eos_id, data.eos_id);
  EXPECT_EQ(back.pad_id, data.pad_id);
  EXPECT_EQ(back.chat_template, data.chat_template);
  EXPECT_EQ(back.nfc, data.nfc);
  EXPECT_EQ(back.kind, data.kind);
  EXPECT_EQ(back.unk_id, data.unk_id);
  EXPECT_EQ(back.add_bos, data.add_bos);
  EXPECT_EQ(back.add_eos, data.add_eos);
  EXPECT_EQ(back.add_space_prefix, data.add_space_prefix);
  EXPECT_EQ(back.pre_regexes, data.pre_regexes);
  EXPECT_EQ(back.merges, data.merges);
  EXPECT_EQ(back.added_tokens.size(), data.added_tokens.size());
  for (size_t i = 0; i < std::min(back.added_tokens.size(), data.added_tokens.size()); ++i) {
    EXPECT_EQ(back.added_tokens[i].id, data.added_tokens[i].id);
    EXPECT_EQ(back.added_tokens[i].content, data.added_tokens[i].content);
    EXPECT_EQ(back.added_tokens[i].special, data.added_tokens[i].special);
  }
  const Tokenizer original(data), reread(back);
  // What the data directories' tokenizer identity hashes (data_format.h): every real entry, id and string.
  auto real_entries = [](const TokenizerData& t) {
    std::vector<std::pair<size_t, std::string>> out;
    for (size_t id = 0; id < t.tokens.size(); ++id)
      if (!t.tokens[id].empty() && t.token_types[id] != TokenType::Unused) out.emplace_back(id, t.tokens[id]);
    return out;
  };
  EXPECT_TRUE(real_entries(back) == real_entries(data));
  for (bool special : {true, false})
    for (const std::string& text : sample_texts())
      EXPECT_EQ(reread.encode(text, special), original.encode(text, special)) << tag << " text: " << text;
}

TEST(TokenizerJsonWriter, StructureForHfTokenizers) {
  TokenizerData d;
  d.source = "synthetic";
  d.tokens = {"a", "b", "ab", "<|x|>", "", "a"};
  d.token_types.assign(d.tokens.size(), TokenType::Normal);
  d.merges = {{"a", "b"}};
  d.added_tokens = {{3, "<|x|>", true, false, false}};
  d.pre_regexes = {R"(\p{N})", kGpt2Regex};
  d.nfc = true;
  d.eos_id = 3;
  d.chat_template = "{{ messages }}";
  const json j = tokenizer_json(d);
  EXPECT_EQ(j.at("normalizer").at("type"), "NFC");
  const json& pre = j.at("pre_tokenizer");
  EXPECT_EQ(pre.at("type"), "Sequence");
  ASSERT_EQ(pre.at("pretokenizers").size(), 3u);
  EXPECT_EQ(pre["pretokenizers"][0].at("pattern").at("Regex"), R"(\p{N})");
  EXPECT_EQ(pre["pretokenizers"][1].at("behavior"), "Isolated");
  EXPECT_EQ(pre["pretokenizers"][2].at("type"), "ByteLevel");
  EXPECT_EQ(pre["pretokenizers"][2].at("use_regex"), false);
  EXPECT_EQ(j.at("decoder").at("type"), "ByteLevel");
  const json& vocab = j.at("model").at("vocab");
  EXPECT_EQ(vocab.size(), 4u);  // the empty string and the repeated "a" are left out
  EXPECT_EQ(vocab.at("a"), 0);
  EXPECT_EQ(vocab.at("<|x|>"), 3);
  EXPECT_EQ(j.at("model").at("merges"), json::parse(R"([["a","b"]])"));
  EXPECT_EQ(j.at("added_tokens")[0].at("special"), true);
  const json c = tokenizer_config_json(d);
  EXPECT_EQ(c.at("eos_token"), "<|x|>");
  EXPECT_TRUE(c.at("bos_token").is_null());
  EXPECT_EQ(c.at("chat_template"), "{{ messages }}");
}

TEST(TokenizerJsonWriter, InvalidUtf8TokenIsAnError) {
  TokenizerData d;
  d.source = "bad.gguf";
  d.tokens = {"ok", "\xff\xfe"};
  d.token_types.assign(2, TokenType::Normal);
  d.pre_regexes = {kGpt2Regex};
  TempDir dir("bad");
  try {
    write_tokenizer_files(d, dir.str());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
  }
}

TEST(TokenizerJsonWriter, TinyTokenizerJsonRoundTrip) {
  check_round_trip(load_tokenizer_json(test::data_path("tokenizer/tiny_tokenizer.json")), "tiny");
}

TEST(TokenizerJsonWriter, TinyTeacherGgufRoundTrip) {
  const auto gguf = GgufFile::open(test::data_path("teacher/qwen2_tiny/model-f32.gguf"));
  check_round_trip(tokenizer_data_from_gguf(*gguf), "tiny_gguf");
}

TEST(TokenizerJsonWriter, SmolLM2GgufRoundTrip) {
  const std::string path = test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  ARWKV_REQUIRE_FILE(path);
  const auto gguf = GgufFile::open(path);
  const TokenizerData data = tokenizer_data_from_gguf(*gguf);
  ASSERT_EQ(data.pre_name, "smollm");
  ASSERT_GT(data.merges.size(), 40000u);
  check_round_trip(data, "smollm2");
}

// A small SentencePiece vocabulary: control tokens, byte tokens, normal pieces with scores, a
// user-defined whitespace run (written with spaces, as llama.cpp's converter does).
TokenizerData tiny_spm(bool space_prefix) {
  TokenizerData d;
  d.source = "tiny-spm";
  d.kind = TokenizerKind::SentencePiece;
  auto add = [&](const std::string& t, TokenType type, float score) {
    d.tokens.push_back(t);
    d.token_types.push_back(type);
    d.scores.push_back(score);
  };
  add("<pad>", TokenType::Control, 0);
  add("<eos>", TokenType::Control, 0);
  add("<bos>", TokenType::Control, 0);
  add("<unk>", TokenType::Unknown, 0);
  add("  ", TokenType::UserDefined, 0);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::Byte, 0);
  const char* pieces[] = {"\xE2\x96\x81t", "he", "\xE2\x96\x81the", "in", "er", "\xE2\x96\x81" "a", "ll", "hell", "o",
                          "h", "e", "l", "t", "a", "i", "n", "r", "\xE2\x96\x81", "\xC3\xA9", "\xE2\x96\x81th"};
  float score = -1;
  for (const char* p : pieces) add(p, TokenType::Normal, score--);
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (d.token_types[i] == TokenType::Control || d.token_types[i] == TokenType::UserDefined)
      d.added_tokens.push_back({static_cast<int32_t>(i), d.tokens[i], d.token_types[i] == TokenType::Control, false, false});
  d.bos_id = 2;
  d.eos_id = 1;
  d.pad_id = 0;
  d.unk_id = 3;
  d.add_bos = true;
  d.add_space_prefix = space_prefix;
  d.chat_template = "<start_of_turn><end_of_turn>";
  d.add_default_stop_ids();
  return d;
}

TEST(TokenizerJsonWriter, SentencePieceAsHfWritesIt) {
  const json j = tokenizer_json(tiny_spm(true));
  EXPECT_EQ(j.at("model").at("byte_fallback"), true);
  EXPECT_EQ(j.at("model").at("unk_token"), "<unk>");
  EXPECT_TRUE(j.at("pre_tokenizer").is_null());
  EXPECT_EQ(j.at("normalizer").at("type"), "Sequence");
  EXPECT_EQ(j.at("post_processor").at("single")[0].at("SpecialToken").at("id"), "<bos>");
  // Merges: every split into two normal pieces, by the score of the whole (higher first).
  const json& merges = j.at("model").at("merges");
  EXPECT_EQ(merges[0], json::array({"\xE2\x96\x81", "t"}));
  EXPECT_EQ(merges[1], json::array({"h", "e"}));
  const auto has = [&](const char* a, const char* b) {
    return std::find(merges.begin(), merges.end(), json::array({a, b})) != merges.end();
  };
  EXPECT_TRUE(has("\xE2\x96\x81t", "he"));
  EXPECT_TRUE(has("\xE2\x96\x81th", "e"));
  EXPECT_TRUE(has("he", "ll"));
  EXPECT_FALSE(has("h", "ell"));  // "ell" is no piece
  EXPECT_EQ(tokenizer_config_json(tiny_spm(true)).at("add_bos_token"), true);
}

TEST(TokenizerJsonWriter, TinySentencePieceRoundTrip) {
  check_round_trip(tiny_spm(false), "tiny_spm");
  check_round_trip(tiny_spm(true), "tiny_spm_prefix");
}

TEST(TokenizerJsonWriter, Gemma3GgufRoundTrip) {
  const std::string path = test::model_path("gemma-3-270m.Q4_K_M.gguf");
  ARWKV_REQUIRE_FILE(path);
  const auto gguf = GgufFile::open(path);
  const TokenizerData data = tokenizer_data_from_gguf(*gguf);
  ASSERT_EQ(data.kind, TokenizerKind::SentencePiece);
  check_round_trip(data, "gemma3");
}

}  // namespace
}  // namespace arwkv
