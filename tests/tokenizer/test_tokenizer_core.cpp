// Tokenizer building blocks against independent references: the GPT-2 byte alphabet (FORMATS.md
// §4.1 examples), UTF-8 repair (the Unicode Standard's worked example), BPE against a naive
// quadratic merge loop, pre-tokenizer look-ahead splits worked out by hand, streaming decode
// against whole decode, invalid UTF-8, chat-template parsing and loader errors.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace arwkv {
namespace {

TEST(ByteLevel, AlphabetMatchesGpt2) {
  const auto& t = utf8::byte_to_code_point();
  std::set<uint32_t> seen(t.begin(), t.end());
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(t['!'], uint32_t('!'));
  EXPECT_EQ(t['~'], uint32_t('~'));
  EXPECT_EQ(t[0xA1], 0xA1u);
  EXPECT_EQ(t[0xFF], 0xFFu);
  EXPECT_EQ(t[0x20], 0x120u);
  EXPECT_EQ(t[0x0A], 0x10Au);
  EXPECT_EQ(t[0x09], 0x109u);
  EXPECT_EQ(t[0x0D], 0x10Du);
  EXPECT_EQ(t[0x7F], 0x121u);
  EXPECT_EQ(t[0xA0], 0x142u);
  EXPECT_EQ(t[0xAD], 0x143u);
  EXPECT_EQ(utf8::to_byte_level(" hi\n"), "\xC4\xA0hi\xC4\x8A");  // "Ġhi Ċ"
}

TEST(ByteLevel, RoundTripsRandomBytes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::string bytes(rng() % 37, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string back;
    ASSERT_TRUE(utf8::from_byte_level(utf8::to_byte_level(bytes), back));
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  EXPECT_FALSE(utf8::from_byte_level(" ", out));  // U+0020 is not in the alphabet
}

TEST(Utf8, RepairFollowsTheUnicodeExample) {
  // Unicode Standard §3.9, "U+FFFD Substitution of Maximal Subparts".
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::repair(in), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(utf8::repair("\xED\xA0\x80"), r + r + r);  // a surrogate is three subparts
  EXPECT_EQ(utf8::repair("ok \xF0\x9F\x98"), "ok " + r);
  EXPECT_EQ(utf8::repair("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(Utf8, CompletePrefixHoldsBackOnlyCutOffCharacters) {
  EXPECT_EQ(utf8::complete_prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8::complete_prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(utf8::complete_prefix("ab\xC3"), 2u);
  EXPECT_EQ(utf8::complete_prefix("ab\x80"), 3u);  // a stray continuation byte is not held
  EXPECT_EQ(utf8::complete_prefix("ab\xF0\x20"), 4u);
}

// A vocabulary of the 256 byte symbols plus random merges over a 4-letter alphabet.
TokenizerData random_bpe_data(uint64_t seed) {
  TokenizerData d;
  d.source = "random";
  for (int b = 0; b < 256; ++b) d.tokens.push_back(utf8::to_byte_level(std::string(1, static_cast<char>(b))));
  std::mt19937_64 rng(seed);
  std::vector<std::string> pool = {"a", "b", "c", "d"};
  std::set<std::string> have(d.tokens.begin(), d.tokens.end());
  while (d.merges.size() < 40) {
    const std::string l = pool[rng() % pool.size()], r = pool[rng() % pool.size()];
    if (l.size() + r.size() > 6 || have.count(l + r)) continue;
    d.merges.emplace_back(l, r);
    d.tokens.push_back(l + r);
    have.insert(l + r);
    pool.push_back(l + r);
  }
  d.token_types.assign(d.tokens.size(), TokenType::Normal);
  return d;
}

// Reference: rescan every adjacent pair, merge the lowest rank (leftmost on ties), repeat.
std::vector<int32_t> naive_bpe(const TokenizerData& d, const std::string& word) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < d.merges.size(); ++i) rank.emplace(d.merges[i], i);
  std::vector<std::string> sym;
  for (char c : word) sym.push_back(utf8::to_byte_level(std::string(1, c)));
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = rank.find({sym[i], sym[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + static_cast<long>(at) + 1);
  }
  std::vector<int32_t> ids;
  for (const auto& s : sym) ids.push_back(d.find_token(s));
  return ids;
}

TEST(Bpe, MatchesNaiveMergeLoop) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const TokenizerData d = random_bpe_data(seed);
    const Bpe bpe(d);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (int trial = 0; trial < 200; ++trial) {
      std::string word(1 + rng() % 23, 'a');
      for (char& c : word) c = "abcdx"[rng() % 5];
      std::vector<int32_t> got;
      bpe.encode_word(word, got);
      ASSERT_EQ(got, naive_bpe(d, word)) << "seed " << seed << " word " << word;
    }
  }
}

TEST(Bpe, DropsBytesMissingFromTheVocabulary) {
  TokenizerData d;
  d.tokens = {"a", "b", "ab"};
  d.token_types.assign(3, TokenType::Normal);
  d.merges = {{"a", "b"}};
  const Bpe bpe(d);
  std::vector<int32_t> ids;
  bpe.encode_word("a\xFF" "b", ids);  // like HF without unk: the missing symbol vanishes
  EXPECT_EQ(ids, std::vector<int32_t>{2});
}

std::vector<std::string> split(const std::vector<std::string>& regexes, const std::string& text) {
  PreTokenizer pre(regexes, "test");
  std::vector<std::string_view> pieces;
  pre.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, QwenLookAheadKeepsLastSpaceForTheWord) {
  const auto qwen = pre_regexes_for("qwen2");
  EXPECT_EQ(split(qwen, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split(qwen, "a   "), (Pieces{"a", "   "}));
  EXPECT_EQ(split(qwen, "x \n\n y"), (Pieces{"x", " \n\n", " y"}));
  EXPECT_EQ(split(qwen, "12 ab"), (Pieces{"1", "2", " ab"}));
  EXPECT_EQ(split(qwen, "(hello"), (Pieces{"(hello"}));  // any one non-letter may prefix a word
  EXPECT_EQ(split(qwen, "IT'S"), (Pieces{"IT", "'S"}));
  EXPECT_EQ(split(qwen, "a\tb"), (Pieces{"a", "\tb"}));
}

TEST(PreTokenizer, SmolLMSplitsDigitsThenGpt2) {
  const auto smol = pre_regexes_for("smollm");
  EXPECT_EQ(split(smol, "a 12"), (Pieces{"a", " ", "1", "2"}));
  EXPECT_EQ(split(smol, "IT'S it's"), (Pieces{"IT", "'", "S", " it", "'s"}));
  EXPECT_EQ(split(smol, "a\t\tb"), (Pieces{"a", "\t", "\t", "b"}));  // only U+0020 may prefix a word
  EXPECT_EQ(split(smol, "a\xC2\x85\xC2\x85" "b"), (Pieces{"a", "\xC2\x85", "\xC2\x85", "b"}));  // U+0085 is \\s (White_Space)
  EXPECT_THROW(pre_regexes_for("no-such-pre"), Error);
}

TEST(PreTokenizer, InvalidUtf8BecomesGapPieces) {
  const std::string text = "ab\xFF\xFEz \xC3";
  const auto pieces = split(pre_regexes_for("qwen2"), text);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
}

Tokenizer tiny_tokenizer() { return Tokenizer(load_tokenizer_json(test::data_path("tokenizer/tiny_tokenizer.json"))); }

TEST(Tokenizer, ArbitraryBytesRoundTrip) {
  const Tokenizer tok = tiny_tokenizer();
  std::mt19937 rng(11);
  for (int trial = 0; trial < 100; ++trial) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 ? 'a' + rng() % 26 : rng());
    EXPECT_EQ(tok.decode_bytes(tok.encode(bytes)), bytes);
    EXPECT_TRUE(utf8::is_valid(tok.decode(tok.encode(bytes))));
  }
}

TEST(Tokenizer, IncrementalDecodeEqualsWholeDecode) {
  const Tokenizer tok = tiny_tokenizer();
  const std::string text = "caf\xC3\xA9 \xF0\x9F\x98\x80\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xE4\xBD\xA0\xE5\xA5\xBD!";
  const auto ids = tok.encode(text);
  IncrementalDecoder dec(tok);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    EXPECT_TRUE(utf8::is_valid(piece));
    streamed += piece;
  }
  streamed += dec.flush();
  EXPECT_EQ(streamed, tok.decode(ids));
  EXPECT_EQ(streamed, text);
}

TEST(Tokenizer, SpecialTokensOnlyWhenParsingSpecial) {
  const Tokenizer tok = tiny_tokenizer();
  const int32_t im_start = tok.token_id("<|im_start|>"), tool = tok.token_id("<tool>");
  ASSERT_GE(im_start, 0);
  ASSERT_GE(tool, 0);
  EXPECT_EQ(tok.encode("<|im_start|>")[0], im_start);
  const auto plain = tok.encode("<|im_start|>", false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok.decode(plain), "<|im_start|>");
  EXPECT_EQ(tok.encode("<tool>", false), std::vector<int32_t>{tool});  // non-special: always matched
  EXPECT_TRUE(tok.is_stop(tok.token_id("<|im_end|>")));
  EXPECT_FALSE(tok.is_stop(tool));
}

TEST(Chat, DefaultSystemPromptFromTemplate) {
  EXPECT_EQ(default_system_prompt("{{ '<|im_start|>system\\nYou are X.<|im_end|>\\n' }}"), "You are X.");
  EXPECT_EQ(default_system_prompt("{{ '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>' }}"), "");
  TokenizerData d;
  d.source = "t";
  d.chat_template = "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}";
  EXPECT_THROW(apply_chat_template(d, {{"user", "hi"}}, true), Error);
  d.chat_template = "";
  EXPECT_THROW(apply_chat_template(d, {{"user", "hi"}}, true), Error);
}

TEST(Loader, ErrorsNameTheFile) {
  const std::string dir = std::filesystem::temp_directory_path() / "arwkv_tok_errors";
  std::filesystem::create_directories(dir);
  const std::string bad = dir + "/tokenizer.json";
  std::ofstream(bad) << "{\"model\": {\"type\": \"BPE\", \"vocab\": ";
  try {
    load_tokenizer_json(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  std::ofstream(bad) << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_THROW(load_tokenizer_json(bad), Error);
  std::ofstream(bad) << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null})";
  EXPECT_THROW(load_tokenizer_json(bad), Error);  // not byte-level
  EXPECT_THROW(load_tokenizer_json(dir + "/missing.json"), Error);
  std::filesystem::remove_all(dir);
}

// A safetensors-style checkpoint that only points at a tokenizer.json.
class JsonOnlyCheckpoint : public Checkpoint {
 public:
  explicit JsonOnlyCheckpoint(std::string json) : json_(std::move(json)) {}
  const std::string& path() const override { return path_; }
  std::string format() const override { return "safetensors"; }
  const ModelConfig& config() const override { return config_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  bool has(const std::string&) const override { return false; }
  HostTensor load(const std::string&) const override { return {}; }
  std::string tokenizer_json_path() const override { return json_; }

 private:
  std::string json_, path_ = "fake-checkpoint";
  ModelConfig config_;
  std::vector<TensorInfo> tensors_;
};

TEST(Loader, LoadTokenizerFromCheckpoint) {
  const auto tok = load_tokenizer(JsonOnlyCheckpoint(test::data_path("tokenizer/tiny_tokenizer.json")));
  EXPECT_EQ(tok->decode(tok->encode("hello 123")), "hello 123");
  try {
    load_tokenizer(JsonOnlyCheckpoint(""));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fake-checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace arwkv

namespace arwkv {
namespace {

// A hand-made SentencePiece vocabulary: "ab" has a lower id (and would win left to right) but "bc"
// has the higher score; "aa" ties with itself; "é" has no piece (byte fallback); "  " is a
// user-defined whitespace run.
TokenizerData tiny_spm_data(bool bytes) {
  TokenizerData d;
  d.source = "tiny-spm";
  d.kind = TokenizerKind::SentencePiece;
  auto add = [&](const std::string& t, TokenType type, float score) {
    d.tokens.push_back(t);
    d.token_types.push_back(type);
    d.scores.push_back(score);
    return static_cast<int32_t>(d.tokens.size() - 1);
  };
  add("<unk>", TokenType::Unknown, 0);
  add("<bos>", TokenType::Control, 0);
  add("  ", TokenType::UserDefined, 0);
  if (bytes)
    for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::Byte, 0);
  for (auto [t, score] : std::vector<std::pair<std::string, float>>{{"ab", -3},
                                                                   {"bc", -1},
                                                                   {"aa", -2},
                                                                   {"ca", -4},
                                                                   {"\xE2\x96\x81" "a", -5},
                                                                   {"a", -10},
                                                                   {"b", -10},
                                                                   {"c", -10},
                                                                   {"\xE2\x96\x81", -10}})
    add(t, TokenType::Normal, score);
  d.added_tokens = {{1, "<bos>", true, false, false}, {2, "  ", false, false, false}};
  d.unk_id = 0;
  d.bos_id = 1;
  d.add_bos = true;
  return d;
}

std::vector<std::string> spm_pieces(const Tokenizer& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int32_t id : tok.encode(text)) out.push_back(tok.data().tokens[id]);
  return out;
}

TEST(SentencePiece, MergesByScoreNotLeftToRight) {
  const Tokenizer tok(tiny_spm_data(true));
  using V = std::vector<std::string>;
  EXPECT_EQ(spm_pieces(tok, "abc"), V({"a", "bc"}));  // "bc" (-1) before "ab" (-3)
  EXPECT_EQ(spm_pieces(tok, "abab"), V({"ab", "ab"}));
  EXPECT_EQ(spm_pieces(tok, "aaa"), V({"aa", "a"}));    // a tie: the leftmost pair
  EXPECT_EQ(spm_pieces(tok, "caab"), V({"c", "aa", "b"}));  // "aa" (-2) before "ab" (-3) and "ca" (-4)
  EXPECT_EQ(spm_pieces(tok, "a a"), V({"a", "\xE2\x96\x81" "a"}));
  EXPECT_EQ(spm_pieces(tok, "a  a"), V({"a", "  ", "a"}));  // the user-defined run, not "▁" + "▁a"
  EXPECT_EQ(tok.decode(tok.encode("a  a bc")), "a  a bc");
}

TEST(SentencePiece, ByteFallbackAndUnknown) {
  const Tokenizer tok(tiny_spm_data(true));
  using V = std::vector<std::string>;
  EXPECT_EQ(spm_pieces(tok, "a\xC3\xA9"), V({"a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(spm_pieces(tok, "\xFF" "b"), V({"<0xFF>", "b"}));  // invalid UTF-8: its byte
  EXPECT_EQ(tok.decode(tok.encode("a\xC3\xA9")), "a\xC3\xA9");
  EXPECT_EQ(tok.decode_bytes(tok.encode("\xFF" "b")), "\xFF" "b");
  // HF's ByteFallback decoder: byte tokens that are not valid UTF-8 are one U+FFFD each.
  EXPECT_EQ(tok.decode({tok.token_id("<0xC3>"), tok.token_id("<0xC3>"), tok.token_id("b")}),
            "\xEF\xBF\xBD\xEF\xBF\xBD" "b");
  const Tokenizer no_bytes(tiny_spm_data(false));
  EXPECT_EQ(spm_pieces(no_bytes, "a\xC3\xA9"), V({"a", "<unk>"}));
}

TEST(SentencePiece, BosOnlyFromEncodeStart) {
  const Tokenizer tok(tiny_spm_data(true));
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("ab"), std::vector<int32_t>({tok.token_id("ab")}));
  EXPECT_EQ(tok.encode_start("ab"), std::vector<int32_t>({1, tok.token_id("ab")}));
  EXPECT_EQ(tok.encode_start("<bos>ab"), std::vector<int32_t>({1, 1, tok.token_id("ab")}));
}

// Against a naive quadratic loop: merge the best pair (highest score, leftmost), look up the rest.
TEST(SentencePiece, MatchesNaiveMergeLoop) {
  const TokenizerData d = tiny_spm_data(true);
  const Tokenizer tok(d);
  auto naive = [&](const std::string& text) {
    std::vector<std::string> sym;
    for (char c : text) sym.push_back(c == ' ' ? "\xE2\x96\x81" : std::string(1, c));
    auto score_of = [&](const std::string& s) -> std::optional<float> {
      for (size_t i = 0; i < d.tokens.size(); ++i)
        if (d.token_types[i] == TokenType::Normal && d.tokens[i] == s) return d.scores[i];
      return std::nullopt;
    };
    for (;;) {
      int best = -1;
      float best_score = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i)
        if (auto s = score_of(sym[i] + sym[i + 1]); s && (best < 0 || *s > best_score)) best = int(i), best_score = *s;
      if (best < 0) break;
      sym[best] += sym[best + 1];
      sym.erase(sym.begin() + best + 1);
    }
    return sym;
  };
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text(1 + rng() % 12, 'a');
    for (char& c : text) c = "abc b"[rng() % 5];
    if (text.find("  ") != std::string::npos) continue;  // the user-defined run is not the naive loop's
    EXPECT_EQ(spm_pieces(tok, text), naive(text)) << text;
  }
}

}  // namespace
}  // namespace arwkv
