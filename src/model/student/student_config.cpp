// Student config.json reading/writing and the student's tensor list (see student_config.h).
#include "model/student/student_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/file_util.h"
#include "formats/hf_config.h"

namespace arwkv {
namespace {

using json = nlohmann::json;

const json& require(const json& j, const char* key, const std::string& src) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail("{}: missing '{}'", src, key);
  return *it;
}

int get_int(const json& j, const char* key, const std::string& src) {
  const json& v = require(j, key, src);
  if (!v.is_number_integer()) fail("{}: '{}' is not an integer: {}", src, key, v.dump());
  return v.get<int>();
}

bool get_bool(const json& j, const char* key, const std::string& src) {
  const json& v = require(j, key, src);
  if (!v.is_boolean()) fail("{}: '{}' is not a boolean: {}", src, key, v.dump());
  return v.get<bool>();
}

std::vector<int> get_layers(const json& j, const std::string& src) {
  const json& v = require(j, "wkv_layers", src);
  if (!v.is_array()) fail("{}: 'wkv_layers' is not a list: {}", src, v.dump());
  std::vector<int> out;
  for (const json& e : v) {
    if (!e.is_number_integer()) fail("{}: 'wkv_layers' holds a non-integer {}", src, e.dump());
    out.push_back(e.get<int>());
  }
  return out;
}

}  // namespace

bool StudentConfig::is_wkv_layer(int64_t layer) const {
  return std::find(wkv_layers.begin(), wkv_layers.end(), layer) != wkv_layers.end();
}

StudentConfig make_student_config(const ModelConfig& teacher, int decay_lora, int iclr_lora, int value_lora,
                                  int gate_lora, bool has_gate) {
  StudentConfig c;
  c.base = teacher;
  c.has_gate = has_gate;
  c.decay_lora = decay_lora;
  c.iclr_lora = iclr_lora;
  c.value_lora = value_lora;
  c.gate_lora = has_gate ? gate_lora : 0;
  for (int64_t l = 0; l < teacher.n_layers; ++l) c.wkv_layers.push_back(static_cast<int>(l));
  return c;
}

void check_student_config(const StudentConfig& c, const std::string& src) {
  const int64_t C = c.base.hidden_size;
  if (c.head_size <= 0 || C <= 0 || C % c.head_size != 0)
    fail("{}: hidden_size {} is not a multiple of head_size {}", src, C, c.head_size);
  for (size_t i = 0; i < c.wkv_layers.size(); ++i) {
    const int l = c.wkv_layers[i];
    if (l < 0 || l >= c.base.n_layers) fail("{}: wkv_layers names layer {} of {}", src, l, c.base.n_layers);
    if (i > 0 && l <= c.wkv_layers[i - 1]) fail("{}: wkv_layers must be ascending without repeats", src);
  }
  if (c.decay_lora <= 0 || c.iclr_lora <= 0 || c.value_lora <= 0)
    fail("{}: LoRA ranks must be positive (decay {}, iclr {}, value residual {})", src, c.decay_lora, c.iclr_lora,
         c.value_lora);
  if (c.has_gate && c.gate_lora <= 0) fail("{}: the gate needs a positive gate_lora_rank, not {}", src, c.gate_lora);
}

StudentConfig student_config_from_json(const json& j, const std::string& src) {
  if (!j.is_object()) fail("{}: not a JSON object", src);
  const json& mt = require(j, "model_type", src);
  if (mt != "rwkv_hybrid") fail("{}: model_type is {}, not \"rwkv_hybrid\"", src, mt.dump());
  const json& tmt = require(j, "teacher_model_type", src);
  if (!tmt.is_string()) fail("{}: 'teacher_model_type' is not a string", src);
  json teacher = j;  // the teacher's fields are read by the teacher's parser
  teacher["model_type"] = tmt;
  StudentConfig c;
  c.base = config_from_hf_json(teacher, src);
  if (get_int(j, "wkv_version", src) != 7) fail("{}: only wkv_version 7 is supported", src);
  c.head_size = get_int(j, "head_size", src);
  c.has_gate = get_bool(j, "wkv_has_gate", src);
  c.has_group_norm = get_bool(j, "wkv_has_group_norm", src);
  c.wkv_layers = get_layers(j, src);
  c.decay_lora = get_int(j, "decay_lora_rank", src);
  c.iclr_lora = get_int(j, "iclr_lora_rank", src);
  c.value_lora = get_int(j, "value_residual_lora_rank", src);
  c.gate_lora = c.has_gate || j.contains("gate_lora_rank") ? get_int(j, "gate_lora_rank", src) : 0;
  if (!c.has_gate) c.gate_lora = 0;
  check_student_config(c, src);
  return c;
}

StudentConfig load_student_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  return student_config_from_json(j, path);
}

json student_config_to_json(const StudentConfig& c) {
  const ModelConfig& b = c.base;
  json j;
  j["architectures"] = json::array({"RwkvHybridForCausalLM"});
  j["model_type"] = "rwkv_hybrid";
  j["teacher_model_type"] = family(b.arch).name;
  if (!b.name.empty()) j["_name_or_path"] = b.name;
  j["vocab_size"] = b.vocab_size;
  j["hidden_size"] = b.hidden_size;
  j["intermediate_size"] = b.intermediate_size;
  j["num_hidden_layers"] = b.n_layers;
  j["num_attention_heads"] = b.n_heads;
  j["num_key_value_heads"] = b.n_kv_heads;
  j["head_dim"] = b.head_dim;
  j["max_position_embeddings"] = b.max_position;
  j["rms_norm_eps"] = b.rms_eps;
  j["rope_theta"] = b.rope_theta;
  if (!b.rope_freq_factors.empty()) j["rope_freq_factors"] = b.rope_freq_factors;
  if (b.sliding_window > 0) j["sliding_window"] = b.sliding_window;
  if (!b.local_layers.empty()) {
    json& types = j["layer_types"] = json::array();
    for (uint8_t local : b.local_layers) types.push_back(local ? "sliding_attention" : "full_attention");
  }
  if (b.rope_local_theta > 0.0f) j["rope_local_base_freq"] = b.rope_local_theta;
  if (b.attn_scale > 0.0f) j["query_pre_attn_scalar"] = 1.0 / (double{b.attn_scale} * b.attn_scale);
  j["attention_bias"] = b.attention_bias;
  j["tie_word_embeddings"] = b.tie_embeddings;
  j["bos_token_id"] = b.bos_token_id >= 0 ? json(b.bos_token_id) : json(nullptr);
  if (b.eos_token_ids.size() == 1) j["eos_token_id"] = b.eos_token_ids[0];
  else if (!b.eos_token_ids.empty()) j["eos_token_id"] = b.eos_token_ids;
  j["head_size"] = c.head_size;
  j["wkv_version"] = 7;
  j["wkv_has_gate"] = c.has_gate;
  j["wkv_has_group_norm"] = c.has_group_norm;
  j["wkv_layers"] = c.wkv_layers;
  j["decay_lora_rank"] = c.decay_lora;
  j["iclr_lora_rank"] = c.iclr_lora;
  j["value_residual_lora_rank"] = c.value_lora;
  j["gate_lora_rank"] = c.has_gate ? c.gate_lora : 0;
  return j;
}

void save_student_config(const StudentConfig& c, const std::string& path) {
  check_student_config(c, path);
  const std::string text = student_config_to_json(c).dump(2) + "\n";
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

bool is_student_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.value("model_type", json()) == "rwkv_hybrid";
}

std::string time_mixer_name(int64_t layer, const std::string& suffix) {
  return layer_tensor_name(layer, "self_attn.time_mixer." + suffix);
}

// The time-mix tensors of one layer, in the order of SPEC §3.
std::vector<TensorSpec> time_mix_tensors(const StudentConfig& c, int64_t layer) {
  const int64_t C = c.base.hidden_size;
  std::vector<TensorSpec> out;
  auto add = [&](const std::string& suffix, Shape s) { out.push_back({time_mixer_name(layer, suffix), s}); };
  for (const char* p : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"})
    if (c.has_gate || std::string(p) != "x_g") add(p, {1, 1, C});
  for (const char* p : {"receptance.weight", "key.weight", "value.weight", "output.weight"}) add(p, {C, C});
  auto lora = [&](const char* name, int rank) {
    add(fmt::format("{}0", name), {1, 1, C});
    add(fmt::format("{}1", name), {C, rank});
    add(fmt::format("{}2", name), {rank, C});
  };
  lora("w", c.decay_lora);
  lora("a", c.iclr_lora);
  if (c.has_value_residual(layer)) lora("v", c.value_lora);
  if (c.has_gate) {
    add("g1", {C, c.gate_lora});
    add("g2", {c.gate_lora, C});
  }
  add("k_k", {1, 1, C});
  add("k_a", {1, 1, C});
  add("r_k", {c.n_wkv_heads(), c.head_size});
  if (c.has_group_norm) {
    add("ln_x.weight", {C});
    add("ln_x.bias", {C});
  }
  return out;
}

// The teacher's list with each time-mix layer's self_attn.* replaced by its time-mix tensors.
std::vector<TensorSpec> student_tensor_list(const StudentConfig& c) {
  std::vector<TensorSpec> list;
  for (TensorSpec& s : teacher_tensors(c.base)) {
    if (s.name == "lm_head.weight") {
      if (!c.base.tie_embeddings) list.push_back({s.name, s.shape});
      continue;
    }
    const size_t attn = s.name.find(".self_attn.");
    if (attn != std::string::npos) {
      const int64_t layer = std::stoll(s.name.substr(std::string("model.layers.").size()));
      if (c.is_wkv_layer(layer)) {
        if (s.name.ends_with(".self_attn.o_proj.weight"))
          for (TensorSpec& t : time_mix_tensors(c, layer)) list.push_back(std::move(t));
        continue;
      }
    }
    list.push_back(std::move(s));
  }
  return list;
}

}  // namespace arwkv
