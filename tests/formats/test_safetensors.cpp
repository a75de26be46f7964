// safetensors: a file written by the Python `safetensors` package, our writer read back (single
// file and sharded), and malformed files (each must throw arwkv::Error naming the file).
#include "core/half.h"
#include "format_test_util.h"
#include "formats/safetensors.h"

namespace arwkv {
namespace {

TEST(Safetensors, ReadsFileWrittenByPythonPackage) {
  auto f = SafetensorsFile::open(test::data_path("formats/py_safetensors.safetensors"));
  const nlohmann::json ref = test::read_json(test::data_path("formats/py_safetensors.json"));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->tensors().size(), ref.size());
  for (const auto& [name, want] : ref.items()) {
    SCOPED_TRACE(name);
    const HostTensor t = f->load(name);
    EXPECT_EQ(t.shape, Shape::from(want["shape"].get<std::vector<int64_t>>()));
    const auto values = want["values"].get<std::vector<float>>();
    ASSERT_EQ(t.values.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.values[i], values[i]) << i;
  }
  EXPECT_EQ(f->find("b.f16")->dtype, "F16");
  EXPECT_EQ(f->find("c.bf16")->dtype, "BF16");
}

TEST(Safetensors, WriterRoundTripAllDtypes) {
  test::TempDir dir;
  const auto a = test::random_vector(3 * 7, 1, -100, 100);
  const auto b = test::random_vector(5, 2);
  const auto c = test::random_vector(2 * 3 * 5, 3);
  SafetensorsWriter w;
  w.add("a", a.data(), Shape{3, 7}, DType::F32);
  w.add("b", b.data(), Shape{5}, DType::F16);
  w.add("c", c.data(), Shape{2, 3, 5}, DType::BF16);
  w.add("scalar", a.data(), Shape{}, DType::F32);
  w.add("empty", a.data(), Shape{0, 3}, DType::BF16);
  w.set_metadata("format", "pt");
  const std::string path = dir.file("m.safetensors");
  w.write(path);

  const auto bytes = test::read_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  EXPECT_EQ(n % 8, 0u);  // header padded to 8 bytes

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->load("a").values, a);
  const HostTensor tb = f->load("b"), tc = f->load("c");
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(tb.values[i], fp16_to_fp32(fp32_to_fp16(b[i])));
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(tc.values[i], bf16_to_fp32(fp32_to_bf16(c[i])));
  EXPECT_EQ(tc.shape, (Shape{2, 3, 5}));
  EXPECT_EQ(f->load("scalar").values, std::vector<float>{a[0]});
  EXPECT_EQ(f->load("scalar").shape.ndim, 0);
  EXPECT_EQ(f->load("empty").values.size(), 0u);
}

// Deferred tensors are made one at a time while the file is written, in insertion order among
// eager ones; a wrong shape throws and leaves no file.
TEST(Safetensors, DeferredTensorsAreMadeWhileWriting) {
  test::TempDir dir;
  const auto a = test::random_vector(3 * 7, 1), b = test::random_vector(4 * 2, 2);
  int made = 0;
  SafetensorsWriter w;
  w.add_deferred("a", Shape{3, 7}, DType::F32, [&] {
    ++made;
    HostTensor t(Shape{3, 7});
    t.values = a;
    return t;
  });
  w.add("e", b.data(), Shape{8}, DType::F32);
  w.add_deferred("b", Shape{4, 2}, DType::BF16, [&] {
    ++made;
    HostTensor t(Shape{4, 2});
    t.values = b;
    return t;
  });
  EXPECT_EQ(made, 0);
  const std::string path = dir.file("d.safetensors");
  w.write(path);
  EXPECT_EQ(made, 2);
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->load("a").values, a);
  EXPECT_EQ(f->load("e").values, b);
  const HostTensor tb = f->load("b");
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(tb.values[i], bf16_to_fp32(fp32_to_bf16(b[i])));

  SafetensorsWriter bad;
  bad.add_deferred("x", Shape{2, 2}, DType::F32, [] { return HostTensor(Shape{3}); });
  const std::string bad_path = dir.file("bad.safetensors");
  try {
    bad.write(bad_path);
    FAIL() << "a wrong shape was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x' has shape [3], expected [2, 2]"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(bad_path));
  EXPECT_FALSE(std::filesystem::exists(bad_path + ".tmp"));

  SafetensorsWriter raw;  // stored bytes given directly: bf16 of 1.0 and -2.0
  raw.add_deferred_bytes("r", Shape{2}, DType::BF16, [](std::vector<uint8_t>& out) { out = {0x80, 0x3f, 0x00, 0xc0}; });
  raw.write(dir.file("raw.safetensors"));
  EXPECT_EQ(SafetensorsFile::open(dir.file("raw.safetensors"))->load("r").values, (std::vector<float>{1.0f, -2.0f}));
  SafetensorsWriter short_raw;
  short_raw.add_deferred_bytes("r", Shape{2}, DType::BF16, [](std::vector<uint8_t>& out) { out = {0x80, 0x3f}; });
  EXPECT_THROW(short_raw.write(dir.file("short.safetensors")), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("short.safetensors")));
}

TEST(Safetensors, ShardedSet) {
  test::TempDir dir;
  const auto x = test::random_vector(12, 4);
  SafetensorsWriter s1, s2;
  s1.add("model.a", x.data(), Shape{3, 4});
  s2.add("model.b", x.data(), Shape{12}, DType::BF16);
  s2.add("model.c", x.data(), Shape{2, 2});
  s1.write(dir.file("model-00001-of-00002.safetensors"));
  s2.write(dir.file("model-00002-of-00002.safetensors"));
  const std::string index = dir.file("model.safetensors.index.json");
  write_safetensors_index(index,
                          {{"model.a", "model-00001-of-00002.safetensors"},
                           {"model.b", "model-00002-of-00002.safetensors"},
                           {"model.c", "model-00002-of-00002.safetensors"}},
                          48 + 24 + 16);
  auto set = SafetensorsSet::open(index);
  EXPECT_EQ(set->names(), (std::vector<std::string>{"model.a", "model.b", "model.c"}));
  EXPECT_EQ(set->load("model.a").values, x);
  EXPECT_EQ(set->load("model.c").shape, (Shape{2, 2}));
  EXPECT_NE(set->file_of("model.b").path().find("00002"), std::string::npos);
  EXPECT_THROW(set->load("model.zzz"), Error);

  // An index naming a tensor its shard lacks, and one naming a missing shard.
  const std::string bad = dir.file("bad.index.json");
  write_safetensors_index(bad, {{"model.q", "model-00001-of-00002.safetensors"}}, 0);
  try {
    SafetensorsSet::open(bad);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.q"), std::string::npos) << e.what();
  }
  write_safetensors_index(bad, {{"model.a", "model-00009-of-00009.safetensors"}}, 0);
  try {
    SafetensorsSet::open(bad);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00009-of-00009"), std::string::npos) << e.what();
  }
}

// A file from a header string and a data buffer.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0x11);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(uint64_t(header.size()) >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

std::string open_error(const test::TempDir& dir, const std::vector<uint8_t>& bytes) {
  const std::string path = dir.file("bad.safetensors");
  test::write_bytes_file(path, bytes);
  try {
    auto f = SafetensorsFile::open(path);
    for (const auto& e : f->tensors()) f->load(e.name);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(Safetensors, MalformedFiles) {
  test::TempDir dir;
  const std::string good = R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"y":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})";
  EXPECT_EQ(open_error(dir, make_file(good, 32)), "");
  struct Case { const char* what; std::vector<uint8_t> bytes; const char* expect; };
  std::vector<uint8_t> huge_len = make_file(good, 32);
  huge_len[7] = 0x01;
  std::vector<uint8_t> past_end = make_file(good, 32);
  past_end[0] = 0xff;
  past_end[1] = 0xff;
  const std::vector<Case> cases = {
      {"too short", {1, 2, 3}, "too short"},
      {"huge header length", huge_len, "implausible"},
      {"header past end", past_end, "past the end"},
      {"bad JSON", make_file(R"({"x":{"dtype":"F32",)", 24), "not valid JSON"},
      {"not an object", make_file("[1,2]", 0), "not a JSON object"},
      {"unknown dtype", make_file(R"({"x":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", 8), "dtype 'F17'"},
      {"unloadable dtype", make_file(R"({"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8), "dtype I32"},
      {"shape mismatch", make_file(R"({"x":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}})", 24), "do not match"},
      {"negative shape", make_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "shape"},
      {"offsets past end", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "cover"},
      {"gap", make_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "tile"},
      {"overlap", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "tile"},
      {"trailing bytes", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12), "cover"},
      {"reversed offsets", make_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8), "end before begin"},
      {"missing offsets", make_file(R"({"x":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"},
      {"bad metadata", make_file(R"({"__metadata__":{"a":1}})", 0), "__metadata__"},
  };
  for (const Case& c : cases) {
    const std::string msg = open_error(dir, c.bytes);
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
  }
  // Truncating a valid file anywhere is an error, never a crash.
  const std::vector<uint8_t> full = make_file(good, 32);
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string msg = open_error(dir, std::vector<uint8_t>(full.begin(), full.begin() + n));
    ASSERT_NE(msg.find("bad.safetensors"), std::string::npos) << n << ": " << msg;
  }
}

}  // namespace
}  // namespace arwkv
