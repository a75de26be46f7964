// Inputs that once crashed or hit undefined behaviour in a parser (found by the fuzz targets of
// fuzz/, or while writing them; docs/fuzzing.md). Each must now end in an error that names the
// file or request and the problem. The fuzz targets replay the same inputs from fuzz/regressions/.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/ops.h"
#include "core/error.h"
#include "data/data_format.h"
#include "data/dataset.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/hf_config.h"
#include "infer/loaded_model.h"
#include "infer/state_file.h"
#include "model/teacher/teacher.h"
#include "server/api.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"
#include "train/config.h"

namespace arwkv {
namespace {

class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            fmt::format("arwkv_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
    return p;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path_ / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  std::filesystem::path path_;
};

// Runs f, which must throw arwkv::Error whose message holds every one of parts.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(UntrustedInputs, ServerRequestWithANumberBeyondDoubleIsABadRequest) {
  LoadedModel m;
  m.tokenizer = std::make_unique<Tokenizer>(load_tokenizer_json(test::data_path("tokenizer/tiny_tokenizer.json")));
  const ApiModel api{m, "tiny", "tiny", 4096};
  for (const std::string body : {R"({"prompt": 1e400})", R"({"messages": [], "max_tokens": 661e30866666666666})"}) {
    try {
      parse_completion_request(api, body);
      ADD_FAILURE() << "accepted " << body;
    } catch (const ApiError& e) {  // was an uncaught nlohmann out_of_range: a 500 and no JSON error body
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.code, "invalid_json");
    }
  }
}

TEST(UntrustedInputs, TokenizerJsonIdsMustBeIntegers) {
  ScratchDir d;
  const std::string head = R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"merges": [], "vocab": )";
  // A float id was cast to an integer: undefined behaviour beyond the range of int64.
  expect_error([&] { load_tokenizer_json(d.write("tokenizer.json", head + R"({"a": 1.2e67}}})")); },
               {"tokenizer.json", "vocab entry 'a'", "1.2e+67"});
  expect_error([&] { load_tokenizer_json(d.write("tokenizer.json", head + R"({"a": 0}}, "added_tokens": [{"id": 2.5, "content": "x"}]})")); },
               {"tokenizer.json", "added token 'x'"});
  const std::string ok = d.write("tokenizer.json", head + R"({"a": 0}}})");
  d.write("generation_config.json", R"({"eos_token_id": [1, 4e40]})");
  expect_error([&] { load_tokenizer_json(ok); }, {"generation_config.json", "eos_token_id"});
  std::filesystem::remove(std::filesystem::path(ok).parent_path() / "generation_config.json");
  d.write("tokenizer_config.json", R"({"bos_token": {"content": 5}})");  // was an escaping type_error
  expect_error([&] { load_tokenizer_json(ok); }, {"tokenizer_config.json", "unexpected structure"});
}

TEST(UntrustedInputs, ImplausibleModelSizesAreRefused) {
  // 2^31 layers: the tensor list of the config tried to allocate gigabytes.
  nlohmann::json j = {{"model_type", "llama"},       {"vocab_size", 64},          {"hidden_size", 64},
                      {"intermediate_size", 128},    {"num_hidden_layers", 2147483648LL}, {"num_attention_heads", 2}};
  expect_error([&] { config_from_hf_json(j, "config.json"); }, {"config.json", "implausible sizes"});
  j["num_hidden_layers"] = 2;
  EXPECT_EQ(teacher_tensor_list(config_from_hf_json(j, "config.json")).size(), 2u * 9 + 3);

  ScratchDir d;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("llama.block_count", GgufValue::integer(GgufType::U64, int64_t{1} << 40));
  w.set("llama.embedding_length", GgufValue::u32(32));
  w.set("llama.feed_forward_length", GgufValue::u32(64));
  w.set("llama.attention.head_count", GgufValue::u32(2));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  const std::vector<float> emb(8 * 32, 0.5f);
  w.add_tensor("token_embd.weight", emb.data(), Shape{8, 32}, GgmlType::F32);
  const std::string path = (std::filesystem::temp_directory_path() / fmt::format("arwkv_layers_{}.gguf", ::getpid())).string();
  w.write(path);
  expect_error([&] { config_from_gguf(*GgufFile::open(path)); }, {path, "implausible sizes", "layers 1099511627776"});
  std::filesystem::remove(path);
}

TEST(UntrustedInputs, TrainConfigTokensPerStepMustNotOverflow) {
  // batch × seq_len overflowed int64 in StageConfig::tokens_per_step.
  const std::string text = R"([run]
out = "x"
data = "d"
[[stage]]
name = "a"
kind = "align"
train = ["time_mix"]
tokens = 9223372036854775807
seq_len = 4294967296
batch = 4294967296
lr = 1e-3
)";
  expect_error([&] { parse_train_config(text, "big.toml"); }, {"big.toml:10", "key 'batch'", "more than 2^40"});
}

// A state file around a header, with a correct checksum.
std::string state_file(const std::string& header) {
  std::string b("ARWKVST\0", 8);
  const uint32_t version = 1, reserved = 0;
  const uint64_t n = header.size();
  b.append(reinterpret_cast<const char*>(&version), 4).append(reinterpret_cast<const char*>(&reserved), 4);
  b.append(reinterpret_cast<const char*>(&n), 8).append(header);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : b) h = (h ^ c) * 1099511628211ull;
  return b.append(reinterpret_cast<const char*>(&h), 8);
}

TEST(UntrustedInputs, StateFileCountsMustBeIntegersInRange) {
  ScratchDir d;
  // A float n_tokens was cast to int64 (undefined beyond its range); a huge one overflowed the
  // CLI's held + prompt + n sum and sized a KV cache of exabytes.
  for (const char* n : {"1e300", "1152921504606846976", "-3"})
    expect_error([&] { state_file_tokens(d.write("s.state", state_file(fmt::format(R"({{"n_tokens": {}}})", n)))); },
                 {"s.state", "'n_tokens'"});
  const std::string path = d.write("s.state", state_file(R"({"n_tokens": 5})"));
  EXPECT_EQ(state_file_tokens(path), 5);

  auto ops = make_ops("cpu");
  const Teacher teacher(*Checkpoint::open(test::data_path("teacher/llama_tiny")), *ops);
  expect_error([&] { teacher.new_state(int64_t{1} << 40); }, {"teacher", "1099511627776 tokens"});
  // A real state file whose logit count is raised by 2^62: times 4 it wraps around to the true
  // size, which passed the size check and then asked for a vector of 2^62 floats.
  auto state = teacher.new_state(4);
  const std::vector<int32_t> ids = {3, 4};
  const std::vector<float> logits = teacher.extend(*state, ids);
  save_state_file(d.write("real.state", ""), teacher, *state, logits);
  const std::string real = d.read("real.state");
  uint64_t hlen = 0;
  std::memcpy(&hlen, real.data() + 16, 8);
  nlohmann::json header = nlohmann::json::parse(real.substr(24, hlen));
  header["logits"] = header["logits"].get<uint64_t>() + (uint64_t{1} << 62);
  const std::string payload = real.substr(24 + hlen, real.size() - 24 - hlen - 8);
  std::string file = state_file(header.dump());
  file.insert(file.size() - 8, payload);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i + 8 < file.size(); ++i) h = (h ^ static_cast<unsigned char>(file[i])) * 1099511628211ull;
  std::memcpy(file.data() + file.size() - 8, &h, 8);
  expect_error([&] { load_state_file(d.write("wrap.state", file), teacher, *state); }, {"wrap.state", "size"});
}

nlohmann::json manifest_with_shard(const nlohmann::json& documents) {
  const nlohmann::json split = {{"documents", 0}, {"tokens", 0}, {"chat_documents", 0}, {"mask_tokens", 0},
                                {"shards", nlohmann::json::array()}};
  nlohmann::json m = {{"format", "arwkv-data"}, {"version", 1}, {"token_dtype", "uint32"},
                      {"tokenizer", {{"source", "t"}, {"vocab_size", 10}, {"vocab_hash", "h"}}},
                      {"has_masks", false}, {"max_token_id", 3}, {"seed", 0}, {"val_fraction", 0.0},
                      {"shard_tokens", 16}, {"splits", {{"train", split}, {"val", split}}},
                      {"inputs", nlohmann::json::array()}};
  m["splits"]["train"]["shards"].push_back(
      {{"tokens", "train-00000.tokens"}, {"docs", "train-00000.docs"}, {"mask", ""}, {"documents", documents}, {"n_tokens", 0}});
  return m;
}

TEST(UntrustedInputs, DataManifestCountsMustBeNonNegativeIntegers) {
  // documents = -1 made the offsets file's expected size 0 and then read the first of no offsets.
  ScratchDir d;
  d.write("train-00000.tokens", "");
  d.write("train-00000.docs", "");
  for (const nlohmann::json& bad : {nlohmann::json(-1), nlohmann::json(1e30), nlohmann::json(2305843009213693951LL)}) {
    const std::string dir = std::filesystem::path(d.write("manifest.json", manifest_with_shard(bad).dump())).parent_path();
    expect_error([&] { Dataset::open(dir); }, {"manifest.json", "'documents'"});
  }
  // Found by the dataset target: a "format" that is not a string threw nlohmann's type_error.
  nlohmann::json m = manifest_with_shard(1);
  m["format"] = nlohmann::json::array({1});
  expect_error([&] { DataManifest::from_json(m, "manifest.json"); }, {"manifest.json", "not an arwkv data manifest"});
  expect_error([&] { DataCursor::from_json({{"epoch", 0.5}, {"index", 0}, {"offset", 0}}, "ck"); }, {"ck", "'epoch'"});
}

}  // namespace
}  // namespace arwkv
