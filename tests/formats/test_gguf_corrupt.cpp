// Malformed GGUF files must throw arwkv::Error naming the file (never crash): truncation at every
// byte, and each field of a hand-built file (independent of our writer) set to something invalid.
#include "format_test_util.h"
#include "formats/gguf.h"

namespace arwkv {
namespace {

// A small GGUF assembled byte by byte, remembering where each field sits so tests can patch it.
struct RawGguf {
  std::vector<uint8_t> b;
  std::map<std::string, size_t> at;

  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
  void str(const std::string& s) { u64(s.size()); b.insert(b.end(), s.begin(), s.end()); }
  void mark(const std::string& field) { at[field] = b.size(); }
  void pad() { while (b.size() % 32) b.push_back(0); }
  void patch32(const std::string& field, uint32_t v) { for (int i = 0; i < 4; ++i) b[at.at(field) + i] = static_cast<uint8_t>(v >> (8 * i)); }
  void patch64(const std::string& field, uint64_t v) { for (int i = 0; i < 8; ++i) b[at.at(field) + i] = static_cast<uint8_t>(v >> (8 * i)); }
};

RawGguf make_valid() {
  RawGguf g;
  g.b = {'G', 'G', 'U', 'F'};
  g.mark("version"); g.u32(3);
  g.mark("n_tensors"); g.u64(2);
  g.mark("n_kv"); g.u64(4);
  g.mark("key0"); g.str("aaa.x"); g.mark("type0"); g.u32(8); g.str("llama");
  g.mark("key1"); g.str("aaa.y"); g.u32(9); g.mark("elem1"); g.u32(4); g.mark("count1"); g.u64(3);
  g.u32(1); g.u32(2); g.u32(3);
  g.str("aaa.b"); g.u32(7); g.mark("bool"); g.b.push_back(1);
  g.str("general.alignment"); g.u32(4); g.mark("align"); g.u32(32);
  g.mark("name0"); g.str("t0"); g.mark("ndims0"); g.u32(2); g.mark("ne0"); g.u64(64); g.u64(2);
  g.mark("type_t0"); g.u32(8); g.mark("off0"); g.u64(0);  // Q8_0: 2 rows × 2 blocks × 34 = 136 bytes
  g.mark("name1"); g.str("t1"); g.u32(1); g.u64(8); g.u32(0); g.mark("off1"); g.u64(160);  // F32 × 8
  g.pad();
  g.mark("data");
  for (int i = 0; i < 136; ++i) g.b.push_back(static_cast<uint8_t>(i == 0 ? 0 : i == 1 ? 0x3c : i));
  g.pad();
  for (int i = 0; i < 8; ++i) g.u32(0x3f800000);  // 1.0f
  g.pad();
  return g;
}

// Opens bytes written to a file in dir; returns the error message, or "" when it opened.
std::string open_error(const test::TempDir& dir, const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::string path = dir.file(name);
  test::write_bytes_file(path, bytes);
  try {
    auto f = GgufFile::open(path);
    for (const auto& t : f->tensors()) f->dequantize(t);  // everything it claims is readable
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(GgufCorrupt, ValidFileOpens) {
  test::TempDir dir;
  const RawGguf g = make_valid();
  EXPECT_EQ(open_error(dir, g.b, "ok.gguf"), "");
  test::write_bytes_file(dir.file("ok.gguf"), g.b);
  auto f = GgufFile::open(dir.file("ok.gguf"));
  EXPECT_EQ(f->get_string("aaa.x"), "llama");
  EXPECT_EQ(f->get_int_array("aaa.y"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f->data_offset(), g.at.at("data"));
  EXPECT_EQ(f->dequantize(f->tensor("t1")).values, std::vector<float>(8, 1.0f));
}

TEST(GgufCorrupt, TruncatedAtEveryByte) {
  test::TempDir dir;
  const RawGguf g = make_valid();
  const size_t data_end = g.at.at("data") + 160 + 32;  // end of t1's bytes; only padding follows
  for (size_t n = 0; n < g.b.size(); ++n) {
    const std::string msg = open_error(dir, std::vector<uint8_t>(g.b.begin(), g.b.begin() + n), "cut.gguf");
    if (n < data_end) {
      ASSERT_NE(msg, "") << "truncated at " << n << " opened";
      ASSERT_NE(msg.find("cut.gguf"), std::string::npos) << msg;
    }
  }
}

TEST(GgufCorrupt, EachBadFieldIsReported) {
  test::TempDir dir;
  struct Case { const char* what; std::function<void(RawGguf&)> patch; const char* expect; };
  const std::vector<Case> cases = {
      {"magic", [](RawGguf& g) { g.b[3] = 'X'; }, "bad magic"},
      {"version 1", [](RawGguf& g) { g.patch32("version", 1); }, "version 1"},
      {"version 4", [](RawGguf& g) { g.patch32("version", 4); }, "version 4"},
      {"big-endian", [](RawGguf& g) { g.patch32("version", 0x03000000); }, "big-endian"},
      {"tensor count", [](RawGguf& g) { g.patch64("n_tensors", uint64_t(1) << 40); }, "tensor count"},
      {"kv count", [](RawGguf& g) { g.patch64("n_kv", uint64_t(1) << 40); }, "metadata count"},
      {"key length", [](RawGguf& g) { g.patch64("key0", uint64_t(1) << 50); }, "truncated"},
      {"value type", [](RawGguf& g) { g.patch32("type0", 13); }, "unknown value type 13"},
      {"nested array", [](RawGguf& g) { g.patch32("elem1", 9); }, "arrays of arrays"},
      {"array element type", [](RawGguf& g) { g.patch32("elem1", 77); }, "unknown value type 77"},
      {"array count", [](RawGguf& g) { g.patch64("count1", uint64_t(1) << 50); }, "past the end"},
      {"bool", [](RawGguf& g) { g.b[g.at.at("bool")] = 2; }, "BOOL"},
      {"duplicate key", [](RawGguf& g) { g.b[g.at.at("key1") + 8 + 4] = 'x'; }, "duplicate metadata key 'aaa.x'"},
      {"alignment", [](RawGguf& g) { g.patch32("align", 48); }, "power of two"},
      {"dims", [](RawGguf& g) { g.patch32("ndims0", 5); }, "5 dims"},
      {"removed ggml type", [](RawGguf& g) { g.patch32("type_t0", 4); }, "unknown ggml type 4"},
      {"unknown ggml type", [](RawGguf& g) { g.patch32("type_t0", 1000); }, "unknown ggml type 1000"},
      {"unsupported ggml type", [](RawGguf& g) { g.patch32("type_t0", 9); }, "unsupported ggml type Q8_1"},
      {"block size", [](RawGguf& g) { g.patch64("ne0", 48); }, "not a multiple"},
      {"huge dims", [](RawGguf& g) { g.patch64("ne0", uint64_t(1) << 39); }, "t0"},
      {"unaligned offset", [](RawGguf& g) { g.patch64("off1", 161); }, "not a multiple of the alignment"},
      {"offset past end", [](RawGguf& g) { g.patch64("off1", 1 << 20); }, "past the end"},
      {"offset overflow", [](RawGguf& g) { g.patch64("off1", ~uint64_t(31)); }, "past the end"},
      {"duplicate tensor", [](RawGguf& g) { g.b[g.at.at("name1") + 9] = '0'; }, "duplicate tensor name 't0'"},
  };
  for (const Case& c : cases) {
    RawGguf g = make_valid();
    c.patch(g);
    const std::string msg = open_error(dir, g.b, "bad.gguf");
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
  }
}

TEST(GgufCorrupt, MissingFileAndRandomBytes) {
  test::TempDir dir;
  try {
    GgufFile::open(dir.file("absent.gguf"));
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.gguf"), std::string::npos);
  }
  // Random garbage after a valid prefix and random single-byte flips never crash.
  std::mt19937 rng(11);
  const RawGguf g = make_valid();
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> b = g.b;
    const size_t limit = g.at.at("data");
    for (int k = 0; k < 1 + trial % 3; ++k) b[rng() % limit] = static_cast<uint8_t>(rng());
    const std::string msg = open_error(dir, b, "flip.gguf");
    if (!msg.empty()) {
      ASSERT_NE(msg.find("flip.gguf"), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace arwkv
