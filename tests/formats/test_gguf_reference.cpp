// The GGUF reader against a file written by the `gguf` Python package (tools/oracle/
// dump_gguf_reference.py): metadata of every value type, and one tensor per ggml type whose
// dequantisation must equal gguf.quants.dequantize; our fp16/bf16/Q8_0 encoders must reproduce
// gguf-py's bytes from the same source values.
#include "formats/gguf.h"
#include "core/half.h"
#include "format_test_util.h"

namespace arwkv {
namespace {

struct Fixture {
  std::unique_ptr<GgufFile> file = GgufFile::open(test::data_path("formats/quant_types.gguf"));
  nlohmann::json index = test::read_json(test::data_path("formats/quant_types.json"));
  std::vector<float> floats = test::read_f32(test::data_path("formats/quant_types.f32"));
};

TEST(GgufReference, Header) {
  Fixture f;
  EXPECT_EQ(f.file->version(), 3u);
  EXPECT_EQ(f.file->alignment(), 32u);
  EXPECT_EQ(f.file->data_offset() % 32, 0u);
  EXPECT_EQ(f.file->get_string("general.architecture"), "test");
  EXPECT_EQ(f.file->tensors().size(), f.index["tensors"].size());
}

TEST(GgufReference, MetadataOfEveryType) {
  Fixture f;
  for (const auto& [key, spec] : f.index["metadata"].items()) {
    SCOPED_TRACE(key);
    const GgufValue* v = f.file->find(key);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(gguf_type_name(v->type), spec["type"].get<std::string>());
    const auto& value = spec["value"];
    if (v->type == GgufType::Array) {
      EXPECT_EQ(gguf_type_name(v->elem_type), spec["elem_type"].get<std::string>());
      ASSERT_EQ(v->array_size(), value.size());
      if (v->elem_type == GgufType::String) EXPECT_EQ(f.file->get_string_array(key), value.get<std::vector<std::string>>());
      else if (v->elem_type == GgufType::F32 || v->elem_type == GgufType::F64)
        for (size_t i = 0; i < value.size(); ++i) EXPECT_EQ(v->floats[i], value[i].get<double>());
      else
        for (size_t i = 0; i < value.size(); ++i)
          EXPECT_EQ(v->ints[i], value[i].is_boolean() ? int64_t(value[i].get<bool>()) : value[i].get<int64_t>());
    } else if (v->type == GgufType::String) {
      EXPECT_EQ(f.file->get_string(key), value.get<std::string>());
    } else if (v->type == GgufType::F32 || v->type == GgufType::F64) {
      EXPECT_EQ(f.file->get_float(key), value.get<double>());
    } else if (v->type == GgufType::Bool) {
      EXPECT_EQ(f.file->get_bool(key), value.get<bool>());
    } else {
      EXPECT_EQ(f.file->get_int(key), value.get<int64_t>());
    }
  }
}

TEST(GgufReference, GettersCheckTypesAndNameFileAndKey) {
  Fixture f;
  EXPECT_EQ(f.file->get_int_or("no.such.key", 7), 7);
  EXPECT_EQ(f.file->get_string_or("no.such.key", "x"), "x");
  EXPECT_TRUE(f.file->get_bool_or("no.such.key", true));
  EXPECT_EQ(f.file->get_int_array("test.arr_i32").size(), 4u);
  EXPECT_EQ(f.file->get_float_array("test.arr_f32").size(), 3u);
  for (auto fn : {+[](const GgufFile& g) { g.get_int("no.such.key"); },
                  +[](const GgufFile& g) { g.get_int("test.string"); },
                  +[](const GgufFile& g) { g.get_string("test.u32"); },
                  +[](const GgufFile& g) { g.get_float("test.i32"); },
                  +[](const GgufFile& g) { g.get_string_array("test.arr_i32"); },
                  +[](const GgufFile& g) { g.get_int_array("test.arr_str"); }}) {
    try {
      fn(*f.file);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("quant_types.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(GgufReference, DequantizationMatchesGguf) {
  Fixture f;
  for (const auto& t : f.index["tensors"]) {
    const std::string name = t["name"];
    SCOPED_TRACE(name);
    const GgufTensorInfo* info = f.file->find_tensor(name);
    ASSERT_NE(info, nullptr);
    EXPECT_STREQ(ggml_type_name(info->type), t["type"].get<std::string>().c_str());
    const HostTensor got = f.file->dequantize(*info);
    const auto shape = t["shape"].get<std::vector<int64_t>>();
    ASSERT_EQ(got.shape, Shape::from(shape));
    const float* want = f.floats.data() + t["expected_offset"].get<size_t>();
    size_t mismatches = 0;
    for (size_t i = 0; i < got.values.size(); ++i)
      if (!test::same_float(got.values[i], want[i]) && mismatches++ < 5)
        ADD_FAILURE() << "element " << i << ": " << got.values[i] << " vs " << want[i];
    EXPECT_EQ(mismatches, 0u);
    // Row access gives the same values.
    std::vector<float> row(static_cast<size_t>(shape[1]));
    f.file->dequantize_rows(*info, 1, 2, row.data());
    for (size_t i = 0; i < row.size(); ++i) ASSERT_TRUE(test::same_float(row[i], want[row.size() + i]));
  }
}

TEST(GgufReference, EncodersReproduceGgufBytes) {
  Fixture f;
  for (const auto& t : f.index["tensors"]) {
    const std::string type = t["type"];
    if (type != "F16" && type != "BF16" && type != "Q8_0") continue;
    SCOPED_TRACE(type);
    const GgufTensorInfo& info = f.file->tensor(t["name"]);
    const float* src = f.floats.data() + t["source_offset"].get<size_t>();
    const uint8_t* bytes = f.file->tensor_data(info);
    const int64_t n = info.numel();
    if (type == "Q8_0") {
      std::vector<uint8_t> q(info.nbytes);
      quantize_row_q8_0(src, q.data(), n);
      EXPECT_EQ(0, std::memcmp(q.data(), bytes, q.size()));
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t want = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
      const uint16_t got = type == "F16" ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
      if (std::isnan(src[i])) EXPECT_TRUE(std::isnan(type == "F16" ? fp16_to_fp32(got) : bf16_to_fp32(got)));
      else ASSERT_EQ(got, want) << "element " << i << " value " << src[i];
    }
  }
}

}  // namespace
}  // namespace arwkv
