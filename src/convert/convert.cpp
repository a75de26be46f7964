// arwkv convert: plan the student, make each tensor of its list, write the directory through a
// temporary sibling, bring the tokenizer along (see convert.h).
#include "convert/convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/gguf.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher_tensors.h"
#include "tokenizer/tokenizer_json_writer.h"

namespace arwkv {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTimeMixer = ".self_attn.time_mixer.";

void check_ranks(const LoraRanks& r, bool gate, const std::string& source) {
  if (r.decay <= 0 || r.iclr <= 0 || r.value <= 0 || (gate && r.gate <= 0))
    fail("{}: bad LoRA ranks {},{},{},{}: each must be a positive integer", source, r.decay, r.iclr, r.value, r.gate);
}

std::string teacher_dir(const Checkpoint& ck) {
  const fs::path p(ck.path());
  return fs::is_directory(p) ? p.string() : p.parent_path().string();
}

void write_json_file(const nlohmann::json& j, const fs::path& path) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(path.string(), [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path.string()); });
}

// The tokenizer and generation config next to the weights; returns what was done, for the report.
std::string bring_tokenizer(const Checkpoint& ck, const fs::path& dir) {
  if (const GgufFile* g = ck.gguf()) {
    if (!g->has("tokenizer.ggml.model")) return "none: the GGUF file has no tokenizer metadata";
    const TokenizerData data = tokenizer_data_from_gguf(*g);
    write_tokenizer_files(data, dir.string());
    std::vector<int32_t> stops = ck.config().eos_token_ids;
    for (int32_t id : data.stop_ids)
      if (std::find(stops.begin(), stops.end(), id) == stops.end()) stops.push_back(id);
    nlohmann::json gen = {{"eos_token_id", stops}};
    gen["bos_token_id"] = data.bos_id >= 0 ? nlohmann::json(data.bos_id) : nlohmann::json(nullptr);
    write_json_file(gen, dir / "generation_config.json");
    return "tokenizer.json written from the GGUF metadata";
  }
  const fs::path src = teacher_dir(ck);
  for (const char* name : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "chat_template.jinja"})
    if (fs::exists(src / name)) fs::copy_file(src / name, dir / name);
  if (ck.tokenizer_json_path().empty()) return fmt::format("none: no tokenizer.json in {}", src.string());
  return fmt::format("copied from {}", src.string());
}

// The output directory: refuses a non-empty one without force, and one holding the teacher.
fs::path check_out_dir(const ConvertOptions& o) {
  fs::path out = fs::path(o.out).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  if (out.empty()) fail("{}: no output directory given", o.teacher);
  if (fs::exists(out)) {
    if (!fs::is_directory(out)) fail("{}: exists and is not a directory", out.string());
    if (!fs::is_empty(out) && !o.force)
      fail("{}: the directory exists and is not empty (--force replaces it)", out.string());
    const std::string teacher = fs::weakly_canonical(o.teacher).string(), target = fs::canonical(out).string();
    if (teacher == target || teacher.starts_with(target + "/"))
      fail("{}: the output directory {} holds the teacher; choose another", o.teacher, out.string());
  }
  return out;
}

}  // namespace

std::vector<int> parse_int_list(const std::string& text, const std::string& what, const std::string& source) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) fail("{}: {} '{}': '{}' is not an integer", source, what, text, item);
    out.push_back(value);
    pos = comma + 1;
  }
  return out;
}

StudentConfig plan_student(const ModelConfig& t, const ConvertOptions& o, const std::string& source) {
  const int64_t C = t.hidden_size;
  if (C % 64 != 0) fail("{}: hidden size {} is not a multiple of the head size 64", source, C);
  for (int l : o.keep_attention)
    if (l < 0 || l >= t.n_layers)
      fail("{}: --keep-attention layer {} is out of range (the teacher has layers 0..{})", source, l, t.n_layers - 1);
  if (o.init == InitKind::Transfer && t.n_heads * t.head_dim != C)
    fail("{}: transfer init needs n_heads·head_dim == hidden size, but {}·{} != {} (use --init arwkv)", source,
         t.n_heads, t.head_dim, C);
  const LoraRanks ranks =
      o.lora_ranks ? *o.lora_ranks : (o.init == InitKind::Transfer ? lora_ranks_for_size(C) : arwkv_lora_ranks());
  check_ranks(ranks, o.gate, source);
  StudentConfig c = make_student_config(t, ranks.decay, ranks.iclr, ranks.value, ranks.gate, o.gate);
  c.has_group_norm = o.group_norm;
  std::erase_if(c.wkv_layers, [&](int l) {
    return std::find(o.keep_attention.begin(), o.keep_attention.end(), l) != o.keep_attention.end();
  });
  if (c.wkv_layers.empty()) fail("{}: --keep-attention keeps every layer; nothing would be converted", source);
  check_student_config(c, source);
  return c;
}

HostTensor make_student_tensor(const Checkpoint& teacher, const StudentConfig& c, InitKind init, uint64_t seed,
                               const std::string& name) {
  const size_t at = name.find(kTimeMixer);
  if (at == std::string::npos) return teacher.load(name);
  const int64_t layer = std::stoll(name.substr(std::strlen("model.layers.")));
  const std::string suffix = name.substr(at + std::strlen(kTimeMixer));
  if (init == InitKind::Transfer) {
    auto attn = [&](const char* proj) { return teacher.load(layer_tensor_name(layer, proj)); };
    const ModelConfig& t = c.base;
    if (suffix == "receptance.weight") return attn("self_attn.q_proj.weight");
    if (suffix == "key.weight") return expand_kv_heads(attn("self_attn.k_proj.weight"), t.n_heads, t.n_kv_heads, t.head_dim);
    if (suffix == "value.weight")
      return expand_kv_heads(attn("self_attn.v_proj.weight"), t.n_heads, t.n_kv_heads, t.head_dim);
    if (suffix == "output.weight") return attn("self_attn.o_proj.weight");
  }
  return init_time_mix_tensor(c, layer, suffix, seed);
}

ConvertReport convert_teacher(const ConvertOptions& o) {
  if (o.dtype != DType::F32 && o.dtype != DType::BF16 && o.dtype != DType::F16)
    fail("{}: weights can be stored as F32, BF16 or F16, not {}", o.teacher, dtype_name(o.dtype));
  const std::unique_ptr<Checkpoint> teacher = Checkpoint::open(o.teacher);
  ConvertReport report;
  report.config = plan_student(teacher->config(), o, teacher->path());
  const fs::path out = check_out_dir(o);
  write_directory_atomically(out.string(), "the student", [&](const std::string& tmp) {
    auto get = [&](const TensorSpec& s) {
      ++report.n_tensors;
      report.n_parameters += s.shape.numel();
      return make_student_tensor(*teacher, report.config, o.init, o.seed, s.name);
    };
    write_student_checkpoint(tmp, report.config, get, o.dtype);
    report.tokenizer = bring_tokenizer(*teacher, tmp);
  });
  report.out = out.string();
  return report;
}

}  // namespace arwkv
