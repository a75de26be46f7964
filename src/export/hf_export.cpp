// Writing a student as an HF directory for llama.cpp's converter (see hf_export.h).
#include "export/hf_export.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "export/gguf_import.h"
#include "formats/file_util.h"
#include "formats/safetensors.h"
#include "model/student/student_checkpoint.h"
#include "tokenizer/tokenizer_json_writer.h"

namespace arwkv {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

// What the export reads from: a student directory or an arwkv7 GGUF.
struct Source {
  StudentConfig config;
  std::function<HostTensor(const std::string&)> load;
  std::function<void(const fs::path&)> write_tokenizer;
  std::shared_ptr<void> keep;  // the open checkpoint or file behind `load`
};

Source open_source(const std::string& model) {
  Source s;
  if (is_arwkv7_gguf(model)) {
    std::shared_ptr<Arwkv7Gguf> g = Arwkv7Gguf::open(model);
    s.config = g->config();
    s.load = [g](const std::string& n) { return g->load(n); };
    s.write_tokenizer = [g](const fs::path& dir) { write_tokenizer_files(g->tokenizer(), dir.string()); };
    s.keep = g;
    return s;
  }
  std::shared_ptr<StudentCheckpoint> ck = StudentCheckpoint::open(model);
  s.config = ck->config();
  s.load = [ck](const std::string& n) { return ck->load(n); };
  const std::string tok = ck->tokenizer_json_path();
  if (tok.empty()) fail("{}: the student has no tokenizer.json", model);
  s.write_tokenizer = [src = fs::path(tok).parent_path()](const fs::path& dir) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                             "special_tokens_map.json", "chat_template.jinja"})
      if (fs::exists(src / name)) fs::copy_file(src / name, dir / name);
  };
  s.keep = ck;
  return s;
}

// AutoTokenizer falls back to the model type (unknown to transformers) without a tokenizer_class.
void ensure_tokenizer_class(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  json j = json::object();
  if (fs::exists(p)) {
    std::ifstream in(p);
    j = json::parse(in, nullptr, false);
    if (!j.is_object()) fail("{}: not a JSON object", p.string());
  }
  if (j.contains("tokenizer_class")) return;
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(p.string(), [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), p.string()); });
}

std::string converter_warning(const StudentConfig& c) {
  if (!c.pure_rwkv()) return "hybrid layers: llama.cpp's arwkv7 has time-mix layers only";
  const int gate = c.has_gate ? 128 : 0;
  if (c.decay_lora != 64 || c.iclr_lora != 64 || c.value_lora != 32 || c.gate_lora != gate)
    return fmt::format(
        "LoRA ranks {}/{}/{}/{}: convert_hf_to_gguf.py (ARwkv7Model) writes 64/64/32/{} into the GGUF keys, so "
        "llama.cpp would reject its file (use `arwkv export --to gguf`, or convert with --lora-ranks 64,64,32,128)",
        c.decay_lora, c.iclr_lora, c.value_lora, c.gate_lora, gate);
  return "";
}

fs::path checked_out_dir(const std::string& out, bool force) {
  fs::path dir = fs::path(out).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  if (dir.empty()) fail("export: no output directory given");
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) fail("{}: exists and is not a directory", dir.string());
    if (!fs::is_empty(dir) && !force) fail("{}: the directory exists and is not empty (--force replaces it)", dir.string());
  }
  return dir;
}

}  // namespace

HfExportReport export_student_hf(const std::string& model, const std::string& out, DType stored, bool force) {
  const fs::path dir = checked_out_dir(out, force);
  const Source src = open_source(model);
  const StudentConfig& c = src.config;
  std::random_device rd;
  const fs::path tmp = fmt::format("{}.tmp-{:08x}", dir.string(), rd());
  HfExportReport r;
  r.out = dir.string();
  r.converter_warning = converter_warning(c);
  try {
    fs::create_directories(tmp);
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    for (const TensorSpec& s : student_tensor_list(c)) {
      const HostTensor t = src.load(s.name);
      if (!(t.shape == s.shape)) fail("{}: tensor '{}' has shape {}, expected {}", model, s.name, t.shape.str(), s.shape.str());
      w.add(s.name, t, stored);
      ++r.n_tensors;
      if (c.base.tie_embeddings && s.name == "model.embed_tokens.weight") {
        w.add("lm_head.weight", t, stored);
        r.added_lm_head = true;
        ++r.n_tensors;
      }
    }
    w.write((tmp / "model.safetensors").string());
    save_student_config(c, (tmp / "config.json").string());
    src.write_tokenizer(tmp);
    ensure_tokenizer_class(tmp);
    if (fs::exists(dir)) fs::remove_all(dir);
    fs::rename(tmp, dir);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fail("{}: {}", dir.string(), e.what());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return r;
}

}  // namespace arwkv
