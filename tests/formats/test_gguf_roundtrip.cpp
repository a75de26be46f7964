// GGUF writer -> reader round trip: metadata of every value type, tensors in F32/F16/BF16/Q8_0
// with odd shapes, and the layout llama.cpp demands (aligned data start, tensors contiguous in
// info order, each padded to 32 bytes).
#include <filesystem>

#include "core/half.h"
#include "format_test_util.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"

namespace arwkv {
namespace {

TEST(GgufRoundTrip, MetadataOfEveryType) {
  test::TempDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("m.u8", GgufValue::integer(GgufType::U8, 255));
  w.set("m.i8", GgufValue::integer(GgufType::I8, -128));
  w.set("m.u16", GgufValue::integer(GgufType::U16, 65535));
  w.set("m.i16", GgufValue::integer(GgufType::I16, -32768));
  w.set("m.u32", GgufValue::u32(4294967295u));
  w.set("m.i32", GgufValue::i32(-2147483647 - 1));
  w.set("m.u64", GgufValue::integer(GgufType::U64, int64_t(1) << 62));
  w.set("m.i64", GgufValue::integer(GgufType::I64, INT64_MIN));
  w.set("m.f32", GgufValue::f32(-1.5e-7f));
  w.set("m.f64", GgufValue::f64(3.141592653589793));
  w.set("m.bool", GgufValue::boolean(true));
  w.set("m.str", GgufValue::string(std::string("a\0b ünï", 9)));
  w.set("m.strs", GgufValue::string_array({"", "x", "<|im_start|>", std::string(300, 'z')}));
  w.set("m.i32s", GgufValue::int_array(GgufType::I32, {-1, 0, 1, 2147483647}));
  w.set("m.u8s", GgufValue::int_array(GgufType::U8, {0, 200}));
  w.set("m.bools", GgufValue::int_array(GgufType::Bool, {1, 0}));
  w.set("m.f32s", GgufValue::float_array(GgufType::F32, {0.25, -8.0}));
  w.set("m.f64s", GgufValue::float_array(GgufType::F64, {1e-300}));
  w.set("m.empty", GgufValue::int_array(GgufType::I64, {}));
  w.set("m.u32", GgufValue::u32(7));  // replaces the earlier value, keeps its place
  const std::string path = dir.file("meta.gguf");
  w.write(path);

  auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->keys().size(), 20u);
  EXPECT_EQ(f->keys()[5], "m.u32");
  EXPECT_EQ(f->get_int("m.u8"), 255);
  EXPECT_EQ(f->get_int("m.i8"), -128);
  EXPECT_EQ(f->get_int("m.u16"), 65535);
  EXPECT_EQ(f->get_int("m.i16"), -32768);
  EXPECT_EQ(f->get_int("m.u32"), 7);
  EXPECT_EQ(f->find("m.u32")->type, GgufType::U32);
  EXPECT_EQ(f->get_int("m.i32"), -2147483647 - 1);
  EXPECT_EQ(f->get_int("m.u64"), int64_t(1) << 62);
  EXPECT_EQ(f->get_int("m.i64"), INT64_MIN);
  EXPECT_EQ(f->get_float("m.f32"), static_cast<double>(-1.5e-7f));
  EXPECT_EQ(f->find("m.f32")->type, GgufType::F32);
  EXPECT_EQ(f->get_float("m.f64"), 3.141592653589793);
  EXPECT_TRUE(f->get_bool("m.bool"));
  EXPECT_EQ(f->get_string("m.str"), std::string("a\0b ünï", 9));
  EXPECT_EQ(f->get_string_array("m.strs"), (std::vector<std::string>{"", "x", "<|im_start|>", std::string(300, 'z')}));
  EXPECT_EQ(f->get_int_array("m.i32s"), (std::vector<int64_t>{-1, 0, 1, 2147483647}));
  EXPECT_EQ(f->find("m.i32s")->elem_type, GgufType::I32);
  EXPECT_EQ(f->get_int_array("m.u8s"), (std::vector<int64_t>{0, 200}));
  EXPECT_EQ(f->get_int_array("m.bools"), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(f->get_float_array("m.f32s"), (std::vector<double>{0.25, -8.0}));
  EXPECT_EQ(f->get_float_array("m.f64s"), (std::vector<double>{1e-300}));
  EXPECT_EQ(f->find("m.empty")->array_size(), 0u);
  EXPECT_TRUE(f->tensors().empty());
}

TEST(GgufRoundTrip, TensorsAndLayout) {
  test::TempDir dir;
  struct Case { std::string name; Shape shape; GgmlType type; };
  const std::vector<Case> cases = {{"a.f32", Shape{3, 5}, GgmlType::F32},
                                   {"b.f16", Shape{7}, GgmlType::F16},
                                   {"c.bf16", Shape{2, 3, 5}, GgmlType::BF16},
                                   {"d.q8", Shape{5, 96}, GgmlType::Q8_0},
                                   {"e.lerp", Shape{6, 1, 1, 8}, GgmlType::F32}};
  GgufWriter w;
  std::vector<std::vector<float>> values;
  for (size_t i = 0; i < cases.size(); ++i) {
    values.push_back(test::random_vector(static_cast<size_t>(cases[i].shape.numel()), 100 + i, -3.0f, 3.0f));
    w.add_tensor(cases[i].name, values.back().data(), cases[i].shape, cases[i].type);
  }
  const std::string path = dir.file("t.gguf");
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto f = GgufFile::open(path);
  ASSERT_EQ(f->tensors().size(), cases.size());
  EXPECT_EQ(f->data_offset() % 32, 0u);
  uint64_t expect_offset = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const GgufTensorInfo& t = f->tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, cases[i].name);
    EXPECT_EQ(t.type, cases[i].type);
    EXPECT_EQ(t.offset, expect_offset);  // contiguous in info order, each padded to 32
    expect_offset += (t.nbytes + 31) / 32 * 32;
    EXPECT_EQ(t.shape(), cases[i].shape);
    EXPECT_EQ(t.ne[0], cases[i].shape[cases[i].shape.ndim - 1]);
    const HostTensor got = f->dequantize(t);
    const std::vector<float>& x = values[i];
    for (size_t j = 0; j < x.size(); ++j) {
      switch (t.type) {
        case GgmlType::F32: ASSERT_EQ(got.values[j], x[j]); break;
        case GgmlType::F16: ASSERT_EQ(got.values[j], fp16_to_fp32(fp32_to_fp16(x[j]))); break;
        case GgmlType::BF16: ASSERT_EQ(got.values[j], bf16_to_fp32(fp32_to_bf16(x[j]))); break;
        default: {
          // Q8_0: within half a quantisation step (amax/127/2) plus the fp16 rounding of the scale.
          float amax = 0;
          for (size_t k = j / 32 * 32; k < j / 32 * 32 + 32; ++k) amax = std::max(amax, std::fabs(x[k]));
          ASSERT_LE(std::fabs(got.values[j] - x[j]), amax / 127.0f * 0.5f + amax * 1e-3f) << j;
        }
      }
    }
  }
  EXPECT_EQ(std::filesystem::file_size(path), f->data_offset() + expect_offset);
}

TEST(GgufRoundTrip, WriterRejectsBadQ8Rows) {
  test::TempDir dir;
  GgufWriter w;
  const std::vector<float> x(40, 1.0f);
  EXPECT_THROW(w.add_tensor("bad", x.data(), Shape{40}, GgmlType::Q8_0), Error);
}

}  // namespace
}  // namespace arwkv
