// The student's hyper-parameters and its one tensor list (SPEC §3, §5).
//
// A student checkpoint is an HF-style directory: config.json with "model_type": "rwkv_hybrid", the
// teacher's fields (and "teacher_model_type": the family's name, model/config.h), head_size, wkv_version 7,
// wkv_has_gate, wkv_has_group_norm, wkv_layers and the LoRA ranks; weights in safetensors.
//
// Tensor naming (student_tensor_list):
//   - a time-mix layer l holds model.layers.{l}.self_attn.time_mixer.{x_r, ..., r_k, ln_x.*} in
//     place of the teacher's q/k/v/o projections;
//   - a hybrid layer (not in wkv_layers) keeps the teacher's self_attn.{q,k,v,o}_proj (+ biases);
//   - everything else (embedding, norms, MLP, final norm, head) under the teacher's names;
//     lm_head.weight only when the embeddings are not tied.
// The value residual: the FIRST time-mix layer (layer 0 unless it is a hybrid layer) produces
// v_first and has no v0/v1/v2; every later time-mix layer mixes towards v_first and has them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/config.h"
#include "model/teacher/teacher_tensors.h"

namespace arwkv {

struct StudentConfig {
  ModelConfig base;              // the teacher's fields; base.arch is the teacher's architecture
  int head_size = 64;            // N; H = hidden_size / N time-mix heads
  bool has_gate = true;
  bool has_group_norm = false;   // GroupNorm(groups = H, eps 64e-5) on the WKV output
  std::vector<int> wkv_layers;   // the time-mix layers, ascending; the others keep attention
  int decay_lora = 64, iclr_lora = 64, value_lora = 32, gate_lora = 128;  // D_w, D_a, D_v, D_g

  static constexpr float kGroupNormEps = 64e-5f;

  int64_t n_wkv_heads() const { return base.hidden_size / head_size; }
  bool is_wkv_layer(int64_t layer) const;
  int first_wkv_layer() const { return wkv_layers.empty() ? -1 : wkv_layers.front(); }
  // Layers that mix their value towards v_first (time-mix layers after the first).
  bool has_value_residual(int64_t layer) const { return is_wkv_layer(layer) && layer != first_wkv_layer(); }
  bool pure_rwkv() const { return static_cast<int64_t>(wkv_layers.size()) == base.n_layers; }
};

// Every layer a time-mix layer; ranks as given.
StudentConfig make_student_config(const ModelConfig& teacher, int decay_lora, int iclr_lora, int value_lora,
                                  int gate_lora, bool has_gate = true);

// Throws arwkv::Error naming `source` for sizes that do not fit (C not a multiple of head_size,
// layer indices out of range or repeated, non-positive ranks).
void check_student_config(const StudentConfig& c, const std::string& source);

StudentConfig student_config_from_json(const nlohmann::json& j, const std::string& source);
StudentConfig load_student_config(const std::string& config_json_path);
nlohmann::json student_config_to_json(const StudentConfig& c);
void save_student_config(const StudentConfig& c, const std::string& config_json_path);  // atomic

// True when the config.json at this path says "model_type": "rwkv_hybrid".
bool is_student_config_file(const std::string& config_json_path);

// "model.layers.{layer}.self_attn.time_mixer.{suffix}"
std::string time_mixer_name(int64_t layer, const std::string& suffix);

// The time-mix tensors of one layer (a layer of wkv_layers).
std::vector<TensorSpec> time_mix_tensors(const StudentConfig& c, int64_t layer);

// Every tensor of the student, HF name and stored shape, in load/save order.
std::vector<TensorSpec> student_tensor_list(const StudentConfig& c);

}  // namespace arwkv
