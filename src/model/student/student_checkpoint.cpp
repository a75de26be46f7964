// Opening and writing student checkpoint directories (see student_checkpoint.h).
#include "model/student/student_checkpoint.h"

#include <filesystem>
#include <set>

#include "core/error.h"
#include "formats/safetensors.h"

namespace arwkv {
namespace fs = std::filesystem;
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The directory of a checkpoint path and its weights file.
std::pair<fs::path, std::string> locate(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    for (const char* f : {"model.safetensors.index.json", "model.safetensors"})
      if (fs::exists(dir / f)) return {dir, (dir / f).string()};
    fail("{}: no model.safetensors or model.safetensors.index.json in the directory", path);
  }
  if (!fs::exists(path, ec)) fail("{}: no such file or directory", path);
  if (!path.ends_with(".safetensors") && !path.ends_with(".safetensors.index.json"))
    fail("{}: not a student checkpoint directory or safetensors file", path);
  return {fs::path(path).parent_path(), path};
}

}  // namespace

StudentCheckpoint::~StudentCheckpoint() = default;

std::unique_ptr<StudentCheckpoint> StudentCheckpoint::open(const std::string& path) {
  const auto [dir, weights] = locate(path);
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) fail("{}: no config.json next to the weights", path);
  std::unique_ptr<StudentCheckpoint> ck(new StudentCheckpoint());
  ck->path_ = path;
  ck->config_ = load_student_config(config_path.string());
  ck->set_ = SafetensorsSet::open(weights);
  if (fs::exists(dir / "tokenizer.json")) ck->tokenizer_ = (dir / "tokenizer.json").string();

  std::set<std::string> expected;
  for (const TensorSpec& s : student_tensor_list(ck->config_)) {
    const SafetensorsEntry* e = ck->set_->find(s.name);
    if (!e) fail("{}: missing tensor '{}' {}", weights, s.name, s.shape.str());
    if (e->shape.size() > static_cast<size_t>(kMaxDims) || !(Shape::from(e->shape) == s.shape))
      fail("{}: tensor '{}' has shape {}, the config implies {}", ck->set_->file_of(s.name).path(), s.name,
           shape_str(e->shape), s.shape.str());
    expected.insert(s.name);
  }
  if (ck->config_.base.tie_embeddings) expected.insert("lm_head.weight");  // ignored, as HF does
  for (const std::string& n : ck->set_->names())
    if (!expected.count(n)) fail("{}: unexpected tensor '{}'", ck->set_->file_of(n).path(), n);
  return ck;
}

std::unique_ptr<StudentCheckpoint> StudentCheckpoint::from_loader(
    std::string path, StudentConfig config, std::function<HostTensor(const std::string&)> load) {
  std::unique_ptr<StudentCheckpoint> ck(new StudentCheckpoint());
  ck->path_ = std::move(path);
  ck->config_ = std::move(config);
  ck->loader_ = std::move(load);
  return ck;
}

bool StudentCheckpoint::has(const std::string& name) const {
  if (set_) return set_->find(name) != nullptr;
  for (const TensorSpec& s : student_tensor_list(config_))
    if (s.name == name) return true;
  return false;
}

HostTensor StudentCheckpoint::load(const std::string& name) const {
  if (!has(name)) fail("{}: no tensor named '{}'", path_, name);
  return set_ ? set_->load(name) : loader_(name);
}

DType StudentCheckpoint::stored_dtype(const std::string& name) const {
  if (!set_) return DType::F32;
  const SafetensorsEntry* e = set_->find(name);
  if (!e) fail("{}: no tensor named '{}'", path_, name);
  return e->dtype == "BF16" ? DType::BF16 : e->dtype == "F16" ? DType::F16 : DType::F32;
}

bool is_student_checkpoint(const std::string& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  return is_student_config_file((dir / "config.json").string());
}

void write_student_checkpoint(const std::string& dir, const StudentConfig& config,
                              const std::function<HostTensor(const TensorSpec&)>& get, DType stored,
                              const std::function<DType(const TensorSpec&)>& stored_of,
                              const std::function<void(const TensorSpec&, std::vector<uint8_t>&)>& half_bytes) {
  check_student_config(config, dir + "/config.json");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the directory: {}", dir, ec.message());
  SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const TensorSpec& s : student_tensor_list(config)) {  // made one at a time while writing
    const DType dt = stored_of ? stored_of(s) : stored;
    if (half_bytes && (dt == DType::F16 || dt == DType::BF16))
      writer.add_deferred_bytes(s.name, s.shape, dt, [&half_bytes, s](std::vector<uint8_t>& out) { half_bytes(s, out); });
    else
      writer.add_deferred(s.name, s.shape, dt, [&get, s] { return get(s); });
  }
  writer.write((fs::path(dir) / "model.safetensors").string());
  save_student_config(config, (fs::path(dir) / "config.json").string());
}

}  // namespace arwkv
