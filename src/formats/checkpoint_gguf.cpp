// Checkpoint over a GGUF file: metadata -> ModelConfig, tensors renamed to HF names, reshaped to
// HF shapes (ne reversed), dequantised to fp32, and for arch llama q/k rows put back in HF order.
#include "formats/checkpoint_gguf.h"

#include <cstring>
#include <map>
#include <regex>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"

namespace arwkv {

namespace {

const std::map<std::string, std::string>& top_level_names() {
  static const std::map<std::string, std::string> m = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                       {"output_norm.weight", "model.norm.weight"},
                                                       {"output.weight", "lm_head.weight"}};
  return m;
}

// A block's GGUF tensor names and their HF names in this family (the norms around the MLP are
// named by the family).
std::map<std::string, std::string> block_names(const Family& fam) {
  std::map<std::string, std::string> m = {
      {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},          {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"},     {"ffn_norm", fam.mlp_norm},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},               {"ffn_down", "mlp.down_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"}};
  if (fam.post_attn_norm) m["post_attention_norm"] = fam.post_attn_norm;
  if (fam.post_mlp_norm) m["post_ffw_norm"] = fam.post_mlp_norm;
  return m;
}

// The inverse of hf_name_from_gguf, for messages about missing tensors.
std::string gguf_name_from_hf(const std::string& hf, Arch arch) {
  for (const auto& [g, h] : top_level_names())
    if (h == hf) return g;
  static const std::regex layer(R"(model\.layers\.(\d+)\.(.+)\.(weight|bias))");
  std::smatch m;
  if (std::regex_match(hf, m, layer))
    for (const auto& [g, h] : block_names(family(arch)))
      if (h == m[2].str()) return "blk." + m[1].str() + "." + g + "." + m[3].str();
  return hf;
}

}  // namespace

std::string hf_name_from_gguf(const std::string& g, Arch arch) {
  if (const auto it = top_level_names().find(g); it != top_level_names().end()) return it->second;
  static const std::regex blk(R"(blk\.(\d+)\.(\w+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(g, m, blk)) return {};
  const std::map<std::string, std::string> names = block_names(family(arch));
  const auto it = names.find(m[2].str());
  if (it == names.end()) return {};
  return "model.layers." + m[1].str() + "." + it->second + "." + m[3].str();
}

void llama_unpermute_row_bytes(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int64_t n_heads) {
  ARWKV_ASSERT(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0, "unpermute {} rows in {} heads",
               rows, n_heads);
  const int64_t d = rows / n_heads, half = d / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::memcpy(dst + static_cast<size_t>(h * d + j * half + i) * row_bytes,
                    src + static_cast<size_t>(h * d + 2 * i + j) * row_bytes, row_bytes);
}

void llama_unpermute_rows(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_heads) {
  llama_unpermute_row_bytes(reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst), rows,
                            static_cast<size_t>(cols) * sizeof(float), n_heads);
}

namespace {

class GgufCheckpoint final : public Checkpoint {
 public:
  explicit GgufCheckpoint(const std::string& path) : file_(GgufFile::open(path)), config_(config_from_gguf(*file_)) {
    std::map<std::string, const GgufTensorInfo*> by_hf;
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (t.name == "rope_freqs.weight") continue;  // part of the config (config_from_gguf)
      const std::string hf = hf_name_from_gguf(t.name, config_.arch);
      if (hf.empty()) fail("{}: unexpected tensor '{}'", path, t.name);
      by_hf[hf] = &t;
    }
    for (const auto& [name, shape] : teacher_tensor_list(config_)) {
      const auto it = by_hf.find(name);
      if (it == by_hf.end())
        fail("{}: missing tensor '{}' (HF name {})", path, gguf_name_from_hf(name, config_.arch), name);
      const Shape got = it->second->shape();
      if (!(got == shape))
        fail("{}: tensor '{}' has shape {}, expected {}", path, it->second->name, got.str(), shape.str());
      add(name, *it->second);
      by_hf.erase(it);
    }
    for (const auto& [name, info] : by_hf) fail("{}: unexpected tensor '{}'", path, info->name);
  }

  const std::string& path() const override { return file_->path(); }
  std::string format() const override { return "gguf"; }
  const ModelConfig& config() const override { return config_; }
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  bool has(const std::string& name) const override { return gguf_of_.count(name) != 0; }
  const GgufFile* gguf() const override { return file_.get(); }

  HostTensor load(const std::string& name) const override {
    const auto it = gguf_of_.find(name);
    if (it == gguf_of_.end()) fail("{}: no tensor named '{}'", path(), name);
    HostTensor t = file_->dequantize(*it->second);
    file_->drop_pages(*it->second);
    const int64_t heads = permute_heads(name);
    if (heads == 0) return t;
    HostTensor out(t.shape);
    const int64_t rows = t.shape[0];
    llama_unpermute_rows(t.values.data(), out.values.data(), rows, t.shape.numel() / rows, heads);
    return out;
  }

  DType stored_dtype(const std::string& name) const override {
    DType t = DType::F32;
    const auto it = gguf_of_.find(name);
    return it != gguf_of_.end() && compact_dtype(it->second->type, &t) ? t : DType::F32;
  }

  void load_stored(const std::string& name, void* dst) const override {
    const DType dt = stored_dtype(name);
    if (dt == DType::F32) return Checkpoint::load_stored(name, dst);
    const GgufTensorInfo& info = *gguf_of_.at(name);
    const int64_t heads = permute_heads(name);
    auto* out = static_cast<uint8_t*>(dst);
    if (heads == 0)
      std::memcpy(out, file_->tensor_data(info), info.nbytes);
    else
      llama_unpermute_row_bytes(file_->tensor_data(info), out, info.n_rows(), dtype_row_bytes(dt, info.row_size()),
                                heads);
    file_->drop_pages(info);
  }

 private:
  void add(const std::string& hf, const GgufTensorInfo& t) {
    infos_.push_back({hf, t.shape(), ggml_type_name(t.type)});
    gguf_of_[hf] = &t;
  }
  // Heads to un-permute a llama q/k weight or bias with; 0 when the tensor is stored in HF order.
  int64_t permute_heads(const std::string& name) const {
    if (!family(config_.arch).gguf_rope_permuted) return 0;
    if (name.find(".self_attn.q_proj.") != std::string::npos) return config_.n_heads;
    if (name.find(".self_attn.k_proj.") != std::string::npos) return config_.n_kv_heads;
    return 0;
  }

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, const GgufTensorInfo*> gguf_of_;
};

}  // namespace

std::unique_ptr<Checkpoint> open_gguf_checkpoint(const std::string& path) {
  return std::make_unique<GgufCheckpoint>(path);
}

}  // namespace arwkv
