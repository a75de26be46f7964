// GGUF files (src/formats/gguf.cpp): the header, metadata and tensor infos, then what opening a
// .gguf model reads from them: the model config, the tokenizer (built, as a model load builds it)
// and the first rows of every tensor, dequantised.
//
// With ARWKV_FUZZ_WRITE_SEEDS=DIR the target writes a small llama GGUF with a byte-level BPE
// tokenizer, a ChatML template and tensors of several types into DIR and exits.
#include <algorithm>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/hf_config.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"

using namespace arwkv;

namespace {

void read_tensors(const GgufFile& f) {
  std::vector<float> rows;
  for (const GgufTensorInfo& t : f.tensors()) {
    const int64_t n = t.row_size(), n_rows = std::min<int64_t>(t.n_rows(), n > 0 ? 4096 / n : 0);
    if (n_rows <= 0) continue;
    rows.resize(static_cast<size_t>(n_rows * n));
    f.dequantize_rows(t, 0, n_rows, rows.data());
  }
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "\xc4\xa0", "he", "ll"};
  for (char c = 'a'; c <= 'z'; ++c) tokens.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) tokens.emplace_back(1, c);
  std::vector<int64_t> types(tokens.size(), 1);
  types[0] = types[1] = types[2] = 3;
  const int64_t V = static_cast<int64_t>(tokens.size()), C = 32;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("general.alignment", GgufValue::u32(32));
  w.set("llama.block_count", GgufValue::u32(1));
  w.set("llama.embedding_length", GgufValue::u32(C));
  w.set("llama.feed_forward_length", GgufValue::u32(64));
  w.set("llama.attention.head_count", GgufValue::u32(2));
  w.set("llama.attention.head_count_kv", GgufValue::u32(1));
  w.set("llama.context_length", GgufValue::u32(256));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set("llama.rope.freq_base", GgufValue::f32(10000.0f));
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string("smollm"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::I32, types));
  w.set("tokenizer.ggml.merges", GgufValue::string_array({"h e", "l l"}));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.set("tokenizer.chat_template",
        GgufValue::string("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                          "{% endfor %}<|im_start|>system\nYou are helpful.<|im_end|>"));
  std::vector<float> values(static_cast<size_t>(V * C));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 17) * 0.125f - 1.0f;
  w.add_tensor("token_embd.weight", values.data(), Shape{V, C}, GgmlType::F16);
  w.add_tensor("output_norm.weight", values.data(), Shape{C}, GgmlType::F32);
  w.add_tensor("blk.0.attn_q.weight", values.data(), Shape{C, C}, GgmlType::Q8_0);
  w.add_tensor("blk.0.attn_k.weight", values.data(), Shape{16, C}, GgmlType::BF16);
  w.write(dir + "/tiny-llama.gguf");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("ARWKV_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("model.gguf", fuzz::as_text(data, size));
  std::unique_ptr<GgufFile> f;
  if (!fuzz::accepts([&] { f = GgufFile::open(path); })) return 0;
  read_tensors(*f);
  fuzz::accepts([&] { teacher_tensor_list(config_from_gguf(*f)); });
  fuzz::accepts([&] {
    const Tokenizer tok(tokenizer_data_from_gguf(*f));
    tok.decode(tok.encode("Hello <|im_start|>world 123 \xe2\x82\xac!"));
  });
  return 0;
}
