// An arwkv7 GGUF read back as a student (see gguf_import.h).
#include "export/gguf_import.h"

#include <cstring>
#include <fstream>
#include <set>
#include <string_view>

#include "core/error.h"
#include "formats/gguf.h"

namespace arwkv {
namespace {

// ne padded with 1s to four dimensions, so {C} and {C,1,1,1} compare equal.
std::vector<int64_t> ne4(std::vector<int64_t> ne) {
  ne.resize(4, 1);
  return ne;
}

std::vector<int64_t> expected_ne(const Shape& row_major) {
  std::vector<int64_t> ne;
  for (int i = row_major.ndim; i-- > 0;) ne.push_back(row_major[i]);
  return ne4(ne);
}

std::string ne_str(const std::vector<int64_t>& ne) {
  std::string s = "{";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "}";
}

bool same_bytes(const GgufFile& f, const GgufTensorInfo& a, const GgufTensorInfo& b) {
  return a.type == b.type && a.nbytes == b.nbytes && ne4(a.ne) == ne4(b.ne) &&
         std::memcmp(f.tensor_data(a), f.tensor_data(b), a.nbytes) == 0;
}

StudentConfig config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != kArwkv7Arch) fail("{}: general.architecture is '{}', not '{}'", f.path(), arch, kArwkv7Arch);
  auto key = [&](const char* suffix) { return f.get_int(arwkv7_key(suffix)); };
  StudentConfig c;
  ModelConfig& b = c.base;
  b.arch = Arch::Llama;
  b.arch_name = "llama";
  b.name = f.get_string_or("general.name", "");
  b.hidden_size = key("embedding_length");
  b.n_layers = key("block_count");
  b.intermediate_size = key("feed_forward_length");
  b.max_position = f.get_int_or(arwkv7_key("context_length"), kArwkv7ContextLength);
  b.rms_eps = static_cast<float>(f.get_float(arwkv7_key("attention.layer_norm_rms_epsilon")));
  c.head_size = static_cast<int>(key("wkv.head_size"));
  if (c.head_size <= 0 || b.hidden_size % c.head_size != 0)
    fail("{}: embedding_length {} is not a multiple of wkv.head_size {}", f.path(), b.hidden_size, c.head_size);
  b.head_dim = c.head_size;
  b.n_heads = b.n_kv_heads = b.hidden_size / c.head_size;
  const int64_t shift = f.get_int_or(arwkv7_key("token_shift_count"), 2);
  if (shift != 1) fail("{}: token_shift_count is {}; arwkv7 needs 1", f.path(), shift);
  c.decay_lora = static_cast<int>(key("attention.decay_lora_rank"));
  c.iclr_lora = static_cast<int>(key("attention.iclr_lora_rank"));
  c.value_lora = static_cast<int>(key("attention.value_residual_mix_lora_rank"));
  c.gate_lora = static_cast<int>(f.get_int_or(arwkv7_key("attention.gate_lora_rank"), 0));
  const GgufTensorInfo& lerp = f.tensor("blk.0.time_mix_lerp_fused.weight");
  c.has_gate = ne4(lerp.ne)[3] == 6 && f.find_tensor("blk.0.time_mix_g1.weight");
  if (!c.has_gate) c.gate_lora = 0;
  c.has_group_norm = f.find_tensor("blk.0.time_mix_ln.weight") && f.find_tensor("blk.0.time_mix_ln.bias");
  for (int64_t l = 0; l < b.n_layers; ++l) c.wkv_layers.push_back(static_cast<int>(l));
  const GgufTensorInfo& embd = f.tensor("token_embd.weight");
  b.vocab_size = ne4(embd.ne)[1];
  b.tie_embeddings = same_bytes(f, embd, f.tensor("output.weight"));
  const int64_t bos = f.get_int_or("tokenizer.ggml.bos_token_id", -1), eos = f.get_int_or("tokenizer.ggml.eos_token_id", -1);
  b.bos_token_id = static_cast<int32_t>(bos);
  if (eos >= 0) b.eos_token_ids = {static_cast<int32_t>(eos)};
  check_student_config(c, f.path());
  return c;
}

}  // namespace

Arwkv7Gguf::~Arwkv7Gguf() = default;

const std::string& Arwkv7Gguf::path() const { return file_->path(); }

std::unique_ptr<Arwkv7Gguf> Arwkv7Gguf::open(const std::string& path) {
  std::unique_ptr<Arwkv7Gguf> g(new Arwkv7Gguf());
  g->file_ = GgufFile::open(path);
  const GgufFile& f = *g->file_;
  g->config_ = config_from_gguf(f);
  std::set<std::string> expected;
  for (const Arwkv7Tensor& t : arwkv7_tensor_list(g->config_)) {
    const GgufTensorInfo* info = f.find_tensor(t.gguf_name);
    if (!info) fail("{}: missing tensor '{}' {}", path, t.gguf_name, ne_str(expected_ne(t.gguf_shape)));
    if (ne4(info->ne) != expected_ne(t.gguf_shape))
      fail("{}: tensor '{}' has ne {}, the keys imply {}", path, t.gguf_name, ne_str(info->ne),
           ne_str(expected_ne(t.gguf_shape)));
    expected.insert(t.gguf_name);
    if (t.transform == Arwkv7Transform::DummyVector || t.transform == Arwkv7Transform::DummyMatrix) continue;
    for (const std::string& hf : t.hf_names) g->by_hf_name_.emplace(hf, t);  // the first holder wins (tied head)
  }
  for (const GgufTensorInfo& t : f.tensors())
    if (!expected.count(t.name)) fail("{}: unexpected tensor '{}' for this arwkv7 configuration", path, t.name);
  for (const TensorSpec& s : student_tensor_list(g->config_)) {
    if (!g->by_hf_name_.count(s.name)) fail("{}: no GGUF tensor holds '{}'", path, s.name);
    g->hf_shapes_[s.name] = s.shape;
  }
  return g;
}

HostTensor Arwkv7Gguf::load(const std::string& hf_name) const {
  const auto it = by_hf_name_.find(hf_name);
  const auto shape = hf_shapes_.find(hf_name);
  if (it == by_hf_name_.end() || shape == hf_shapes_.end()) fail("{}: no tensor '{}' in this student", path(), hf_name);
  const HostTensor g = file_->dequantize(file_->tensor(it->second.gguf_name));
  return arwkv7_to_hf(it->second, g, hf_name, shape->second);
}

TokenizerData Arwkv7Gguf::tokenizer() const {
  if (!file_->has("tokenizer.ggml.model")) fail("{}: the file has no tokenizer metadata", path());
  return tokenizer_data_from_gguf(*file_);
}

bool is_arwkv7_gguf(const std::string& path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in.read(magic, 4) || std::string_view(magic, 4) != "GGUF") return false;  // also: directories
  try {
    return GgufFile::open(path)->get_string_or("general.architecture", "") == kArwkv7Arch;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace arwkv
