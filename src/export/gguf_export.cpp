// Writing a student as an arwkv7 GGUF for llama.cpp (see gguf_export.h).
#include "export/gguf_export.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "export/arwkv7_names.h"
#include "formats/gguf_writer.h"
#include "model/student/student_checkpoint.h"

namespace arwkv {
namespace {

uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q8_0: return 7;
    default: fail("arwkv7 export: weight type {} is not offered (f32, f16, q8_0)", ggml_type_name(t));
  }
}

// Large matrices take the requested type (Q8_0 falls back to F16 for rows that are not whole
// blocks); everything else stays F32.
GgmlType stored_type(const Arwkv7Tensor& t, GgmlType requested) {
  if (!t.big_matrix || requested == GgmlType::F32) return GgmlType::F32;
  const int64_t row = t.gguf_shape[t.gguf_shape.ndim - 1];
  if (requested == GgmlType::Q8_0 && row % 32 != 0) return GgmlType::F16;
  return requested;
}

void add_hparams(GgufWriter& w, const StudentConfig& c, GgmlType type) {
  const ModelConfig& b = c.base;
  auto u32 = [&](const std::string& suffix, int64_t v) { w.set(arwkv7_key(suffix), GgufValue::u32(static_cast<uint32_t>(v))); };
  w.set("general.architecture", GgufValue::string(kArwkv7Arch));
  w.set("general.name", GgufValue::string(b.name.empty() ? "arwkv student" : b.name));
  w.set("general.file_type", GgufValue::u32(file_type_of(type)));
  if (type == GgmlType::Q8_0) w.set("general.quantization_version", GgufValue::u32(2));
  u32("context_length", kArwkv7ContextLength);
  u32("embedding_length", b.hidden_size);
  u32("block_count", b.n_layers);
  u32("feed_forward_length", b.intermediate_size);
  w.set(arwkv7_key("attention.layer_norm_rms_epsilon"), GgufValue::f32(b.rms_eps));
  u32("wkv.head_size", c.head_size);
  u32("attention.decay_lora_rank", c.decay_lora);
  u32("attention.iclr_lora_rank", c.iclr_lora);
  u32("attention.value_residual_mix_lora_rank", c.value_lora);
  u32("attention.gate_lora_rank", c.has_gate ? c.gate_lora : 0);
  u32("token_shift_count", 1);
  u32("attention.head_count", 0);  // required by llama.cpp's loader, unused by arwkv7
}

// An explicit id for bos/eos/padding: llama.cpp falls back to id 11 for gpt2 vocabularies.
int64_t first_valid(std::initializer_list<int64_t> ids, int64_t n) {
  for (int64_t id : ids)
    if (id >= 0 && id < n) return id;
  return -1;
}

}  // namespace

std::string llama_cpp_pre_name(const TokenizerData& d) {
  for (const char* name : {"qwen2", "smollm", "gpt-2", "llama-bpe"})
    if (pre_regexes_for(name) == d.pre_regexes) return name;
  return "";
}

void add_gguf_tokenizer(GgufWriter& w, const TokenizerData& d, const ModelConfig& b) {
  const int64_t n = b.vocab_size;
  if (static_cast<int64_t>(d.tokens.size()) > n)
    fail("{}: the tokenizer has {} tokens but the embedding only {} rows; llama.cpp needs one row per token",
         d.source, d.tokens.size(), n);
  const std::string pre = llama_cpp_pre_name(d);
  if (pre.empty())
    fail("{}: the tokenizer's pre-tokenizer matches none llama.cpp knows (qwen2, smollm, gpt-2, llama-bpe)", d.source);
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int64_t> types(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const size_t u = static_cast<size_t>(i);
    const bool real = u < d.tokens.size() && !d.tokens[u].empty();
    tokens[u] = real ? d.tokens[u] : fmt::format("[PAD{}]", i);
    types[u] = real ? static_cast<int64_t>(d.token_types[u]) : static_cast<int64_t>(TokenType::Unused);
  }
  std::vector<std::string> merges;
  merges.reserve(d.merges.size());
  for (const auto& [l, r] : d.merges) merges.push_back(l + " " + r);
  const int64_t eos = first_valid({d.eos_id, b.eos_token_ids.empty() ? -1 : b.eos_token_ids[0]}, n);
  const int64_t bos = first_valid({d.bos_id, b.bos_token_id, eos}, n);
  const int64_t pad = first_valid({d.pad_id, eos}, n);
  if (eos < 0) fail("{}: no end-of-sequence token id (tokenizer or config); llama.cpp would assume id 11", d.source);
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string(pre));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::I32, std::move(types)));
  w.set("tokenizer.ggml.merges", GgufValue::string_array(std::move(merges)));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(bos)));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos)));
  w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(static_cast<uint32_t>(pad)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  if (!d.chat_template.empty()) w.set("tokenizer.chat_template", GgufValue::string(d.chat_template));
}

GgufExportReport export_student_gguf(const StudentCheckpoint& ck, const TokenizerData& tok, const std::string& out,
                                     GgmlType type) {
  const StudentConfig& c = ck.config();
  check_arwkv7_exportable(c, ck.path());
  file_type_of(type);
  GgufWriter w;
  add_hparams(w, c, type);
  add_gguf_tokenizer(w, tok, c.base);
  const std::vector<Arwkv7Tensor> list = arwkv7_tensor_list(c);
  for (const Arwkv7Tensor& t : list) {
    std::vector<HostTensor> sources;
    for (const std::string& name : t.hf_names) sources.push_back(ck.load(name));
    w.add_tensor(t.gguf_name, arwkv7_from_hf(t, sources), stored_type(t, type));
  }
  w.write(out);
  GgufExportReport r;
  r.out = out;
  r.n_tensors = static_cast<int64_t>(list.size());
  r.n_tokens = c.base.vocab_size;
  r.pre = llama_cpp_pre_name(tok);
  r.bytes = std::filesystem::file_size(out);
  return r;
}

}  // namespace arwkv
