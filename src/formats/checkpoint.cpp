// Checkpoint::open and the safetensors-backed checkpoint: an HF directory (config.json with
// model.safetensors or model.safetensors.index.json + shards, tokenizer.json), or a single
// .safetensors file next to its config.json. The tensor set must be exactly the teacher's list;
// norms are returned as the model uses them (Gemma's 1 + w).
#include "formats/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <cstring>
#include <map>

#include "core/error.h"
#include "formats/checkpoint_gguf.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace arwkv {
namespace fs = std::filesystem;
namespace {

bool starts_with_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

class SafetensorsCheckpoint final : public Checkpoint {
 public:
  SafetensorsCheckpoint(const std::string& path, const std::string& weights, const fs::path& dir)
      : path_(path), config_(load_hf_config((dir / "config.json").string())), set_(SafetensorsSet::open(weights)) {
    if (fs::exists(dir / "tokenizer.json")) tokenizer_ = (dir / "tokenizer.json").string();
    std::map<std::string, bool> seen;
    for (const std::string& n : set_->names()) seen[n] = false;
    for (const auto& [name, shape] : teacher_tensor_list(config_)) {
      const SafetensorsEntry* e = set_->find(name);
      if (!e) fail("{}: missing tensor '{}'", weights, name);
      check_shape(*e, shape);
      infos_.push_back({name, shape, e->dtype});
      seen[name] = true;
    }
    // A tied checkpoint may still carry lm_head.weight; HF ignores it for the embedding, we keep it listed.
    if (const SafetensorsEntry* head = set_->find("lm_head.weight"); head && config_.tie_embeddings) {
      check_shape(*head, Shape{config_.vocab_size, config_.hidden_size});
      infos_.push_back({head->name, Shape::from(head->shape), head->dtype});
      seen[head->name] = true;
    }
    for (const auto& [name, used] : seen)
      if (!used && !name.ends_with("rotary_emb.inv_freq"))
        fail("{}: unexpected tensor '{}'", set_->file_of(name).path(), name);
    for (const TensorInfo& t : infos_) known_[t.name] = true;
  }

  const std::string& path() const override { return path_; }
  std::string format() const override { return "safetensors"; }
  const ModelConfig& config() const override { return config_; }
  const std::vector<TensorInfo>& tensors() const override { return infos_; }
  bool has(const std::string& name) const override { return known_.count(name) != 0; }
  std::string tokenizer_json_path() const override { return tokenizer_; }
  // A family whose RMSNorms weigh by (offset + w) (Gemma) gets the sum, as GGUF files store it.
  HostTensor load(const std::string& name) const override {
    if (!has(name)) fail("{}: no tensor named '{}'", path_, name);
    HostTensor t = set_->load(name);
    if (const float offset = family(config_.arch).norm_offset; offset != 0.0f && name.ends_with("norm.weight"))
      for (float& v : t.values) v += offset;
    return t;
  }

 private:
  void check_shape(const SafetensorsEntry& e, const Shape& want) const {
    if (e.shape.size() > static_cast<size_t>(kMaxDims) || !(Shape::from(e.shape) == want))
      fail("{}: tensor '{}' has shape {}, expected {}", set_->file_of(e.name).path(), e.name,
           nlohmann_shape(e.shape), want.str());
  }
  static std::string nlohmann_shape(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  }

  std::string path_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsSet> set_;
  std::string tokenizer_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, bool> known_;
};

}  // namespace

void Checkpoint::load_stored(const std::string& name, void* dst) const {
  ARWKV_ASSERT(stored_dtype(name) == DType::F32, "{}: load_stored of a compact tensor is not implemented", path());
  const HostTensor t = load(name);
  std::memcpy(dst, t.values.data(), t.values.size() * sizeof(float));
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (!fs::exists(dir / "config.json")) fail("{}: no config.json in the directory", path);
    if (fs::exists(dir / "model.safetensors.index.json"))
      return std::make_unique<SafetensorsCheckpoint>(path, (dir / "model.safetensors.index.json").string(), dir);
    if (fs::exists(dir / "model.safetensors"))
      return std::make_unique<SafetensorsCheckpoint>(path, (dir / "model.safetensors").string(), dir);
    fail("{}: no model.safetensors or model.safetensors.index.json in the directory", path);
  }
  if (!fs::exists(path, ec)) fail("{}: no such file or directory", path);
  if (starts_with_gguf_magic(path)) return open_gguf_checkpoint(path);
  if (path.ends_with(".safetensors") || path.ends_with(".safetensors.index.json")) {
    const fs::path dir = fs::path(path).parent_path();
    if (!fs::exists(dir / "config.json")) fail("{}: no config.json next to it", path);
    return std::make_unique<SafetensorsCheckpoint>(path, path, dir);
  }
  fail("{}: not a GGUF file, a .safetensors file or a model directory", path);
}

}  // namespace arwkv
