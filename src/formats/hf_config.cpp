// config.json and GGUF metadata -> ModelConfig, and the teacher's tensor list.
#include "formats/hf_config.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/error.h"
#include "formats/gguf.h"

namespace arwkv {
namespace {

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& src) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail("{}: missing '{}'", src, key);
  if (!it->is_number_integer()) fail("{}: '{}' is not an integer: {}", src, key, it->dump());
  return it->get<int64_t>();
}

int64_t get_int_or(const nlohmann::json& j, const char* key, int64_t def, const std::string& src) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? def : get_int(j, key, src);
}

double get_number_or(const nlohmann::json& j, const char* key, double def, const std::string& src) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) fail("{}: '{}' is not a number: {}", src, key, it->dump());
  return it->get<double>();
}

double get_positive(const nlohmann::json& j, const char* key, const std::string& src, const char* table) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number() || !(it->get<double>() > 0.0))
    fail("{}: '{}' needs a positive number '{}'", src, table, key);
  return it->get<double>();
}

// The frequency factors of Llama 3's RoPE scaling (transformers' "llama3" rope type; llama.cpp's
// converter writes the same numbers as rope_freqs): pairs whose wavelength is below
// original_max / high_freq_factor keep their frequency, those above original_max /
// low_freq_factor have it divided by factor, and those between are interpolated.
std::vector<float> llama3_freq_factors(const nlohmann::json& s, double theta, int64_t head_dim, const std::string& src,
                                       const char* table) {
  const double factor = get_positive(s, "factor", src, table), low = get_positive(s, "low_freq_factor", src, table),
               high = get_positive(s, "high_freq_factor", src, table),
               old_context = get_positive(s, "original_max_position_embeddings", src, table);
  if (!(high > low)) fail("{}: '{}' needs high_freq_factor {} above low_freq_factor {}", src, table, high, low);
  const double low_wavelen = old_context / low, high_wavelen = old_context / high;
  std::vector<float> out(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double wavelen = 2.0 * std::numbers::pi / std::pow(theta, -2.0 * static_cast<double>(i) / head_dim);
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_context / wavelen - low) / (high - low);
      f = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

// rope_scaling (or transformers 5's rope_parameters): the default, or llama3's factors into c.
void read_rope_scaling(const nlohmann::json& j, const char* key, ModelConfig& c, const std::string& src) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) fail("{}: '{}' is not an object", src, key);
  std::string type = "default";
  for (const char* k : {"rope_type", "type"})
    if (it->contains(k) && (*it)[k].is_string()) type = (*it)[k].get<std::string>();
  if (type == "llama3") c.rope_freq_factors = llama3_freq_factors(*it, c.rope_theta, c.head_dim, src, key);
  else if (type != "default") fail("{}: rope scaling '{}' is not supported (default and llama3 are)", src, type);
}

// layer_types ("sliding_attention" / "full_attention" per layer) or, in older Gemma 3 configs,
// sliding_window_pattern P (every P-th layer is global): which layers the window holds in. Neither:
// all of them (Mistral).
void read_layer_types(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  const int64_t L = get_int(j, "num_hidden_layers", src);
  if (L <= 0 || L > 4096) return;  // check_sizes says what is wrong
  if (const auto lt = j.find("layer_types"); lt != j.end() && !lt->is_null()) {
    if (!lt->is_array() || static_cast<int64_t>(lt->size()) != L)
      fail("{}: 'layer_types' should list {} layers, it is {}", src, L, lt->dump());
    for (const auto& t : *lt) {
      if (t == "sliding_attention") c.local_layers.push_back(1);
      else if (t == "full_attention") c.local_layers.push_back(0);
      else fail("{}: layer type {} is not supported (sliding_attention, full_attention)", src, t.dump());
    }
  } else if (j.contains("sliding_window_pattern") && !j["sliding_window_pattern"].is_null()) {
    const int64_t p = get_int(j, "sliding_window_pattern", src);
    if (p <= 0) fail("{}: sliding_window_pattern {} is not positive", src, p);
    for (int64_t l = 0; l < L; ++l) c.local_layers.push_back((l + 1) % p != 0);
  }
}

// Gemma 3's own fields: the MLP's activation, the attention scale, the local layers' RoPE base,
// and the soft-capping it does not have (refused if a config asks for it).
void read_gemma_fields(const nlohmann::json& j, const Family& fam, ModelConfig& c, const std::string& src) {
  for (const char* key : {"hidden_act", "hidden_activation"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    const std::string want = fam.mlp_activation == Activation::Silu ? "silu" : "gelu_pytorch_tanh";
    if (!it->is_string() || (it->get<std::string>() != want && !(want == "silu" && *it == "swish")))
      fail("{}: {} {} is not supported for {} (it uses {})", src, key, it->dump(), fam.name, want);
  }
  for (const char* key : {"final_logit_softcapping", "attn_logit_softcapping"})
    if (j.contains(key) && !j[key].is_null()) fail("{}: {} is not supported", src, key);
  if (j.contains("use_bidirectional_attention") && j["use_bidirectional_attention"] == true)
    fail("{}: use_bidirectional_attention (an encoder) is not supported", src);
  if (fam.arch != Arch::Gemma3) return;
  const double scalar = get_number_or(j, "query_pre_attn_scalar", 256.0, src);
  if (!(scalar > 0.0)) fail("{}: query_pre_attn_scalar {} is not positive", src, scalar);
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  if (c.sliding_window > 0 && c.local_layers.empty() && c.n_layers > 0 && c.n_layers <= 4096)  // transformers' default
    for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers.push_back((l + 1) % 6 != 0);
  c.rope_local_theta = static_cast<float>(get_number_or(j, "rope_local_base_freq", 10000.0, src));
  if (!(c.rope_local_theta > 0.0f)) fail("{}: rope_local_base_freq {} is not positive", src, c.rope_local_theta);
}

void check_sizes(const ModelConfig& c, const std::string& src) {
  if (c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.intermediate_size <= 0 || c.vocab_size <= 0)
    fail("{}: sizes must be positive (hidden {}, layers {}, heads {}, kv heads {}, head_dim {}, ffn {}, vocab {})",
         src, c.hidden_size, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.intermediate_size, c.vocab_size);
  // Far above any real model (the largest have ~130 layers, 16k hidden, 53k ffn, 256k vocab), low
  // enough that sizes derived from these (tensor lists, shapes, their products) stay small.
  constexpr int64_t kMaxLayers = 4096, kMaxWidth = int64_t{1} << 20, kMaxHeads = 1 << 16, kMaxVocab = int64_t{1} << 24;
  if (c.n_layers > kMaxLayers || c.hidden_size > kMaxWidth || c.intermediate_size > kMaxWidth ||
      c.n_heads > kMaxHeads || c.n_kv_heads > kMaxHeads || c.head_dim > kMaxWidth ||
      c.n_heads * c.head_dim > kMaxWidth || c.vocab_size > kMaxVocab)
    fail("{}: implausible sizes (hidden {}, layers {}, heads {}, kv heads {}, head_dim {}, ffn {}, vocab {}): at most "
         "{} layers, widths of {}, {} heads and a vocabulary of {}",
         src, c.hidden_size, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.intermediate_size, c.vocab_size,
         kMaxLayers, kMaxWidth, kMaxHeads, kMaxVocab);
  if (!c.rope_freq_factors.empty() && static_cast<int64_t>(c.rope_freq_factors.size()) * 2 != c.head_dim)
    fail("{}: {} RoPE frequency factors for heads of {}", src, c.rope_freq_factors.size(), c.head_dim);
  if (c.n_heads % c.n_kv_heads != 0)
    fail("{}: {} attention heads are not a multiple of {} key/value heads", src, c.n_heads, c.n_kv_heads);
  if (c.head_dim % 2 != 0) fail("{}: head_dim {} is odd", src, c.head_dim);
  if (!c.local_layers.empty() && static_cast<int64_t>(c.local_layers.size()) != c.n_layers)
    fail("{}: {} layer types for {} layers", src, c.local_layers.size(), c.n_layers);
}

}  // namespace

ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) fail("{}: not a JSON object", src);
  ModelConfig c;
  const auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) fail("{}: missing 'model_type'", src);
  c.arch_name = mt->get<std::string>();
  const Family* fam = find_family(c.arch_name);
  if (!fam) fail("{}: unsupported architecture {} (known: {})", src, c.arch_name, family_names());
  c.arch = fam->arch;
  if (j.contains("_name_or_path") && j["_name_or_path"].is_string()) c.name = j["_name_or_path"].get<std::string>();
  c.vocab_size = get_int(j, "vocab_size", src);
  c.hidden_size = get_int(j, "hidden_size", src);
  c.intermediate_size = get_int(j, "intermediate_size", src);
  c.n_layers = get_int(j, "num_hidden_layers", src);
  c.n_heads = get_int(j, "num_attention_heads", src);
  c.n_kv_heads = get_int_or(j, "num_key_value_heads", c.n_heads, src);
  c.head_dim = get_int_or(j, "head_dim", c.n_heads > 0 ? c.hidden_size / c.n_heads : 0, src);
  c.max_position = get_int_or(j, "max_position_embeddings", fam->default_max_position, src);
  c.rms_eps = static_cast<float>(get_number_or(j, "rms_norm_eps", 1e-6, src));
  double theta = 10000.0;
  if (j.contains("rope_theta") && !j["rope_theta"].is_null()) theta = get_number_or(j, "rope_theta", theta, src);
  else if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    theta = get_number_or(j["rope_parameters"], "rope_theta", theta, src);
  c.rope_theta = static_cast<float>(theta);
  read_rope_scaling(j, "rope_scaling", c, src);
  read_rope_scaling(j, "rope_parameters", c, src);
  // A student's config carries the factors themselves (its teacher may have been a GGUF file).
  if (const auto ff = j.find("rope_freq_factors"); ff != j.end() && !ff->is_null()) {
    if (!ff->is_array()) fail("{}: 'rope_freq_factors' is not a list", src);
    c.rope_freq_factors.clear();
    for (const auto& v : *ff) {
      if (!v.is_number() || !(v.get<double>() > 0.0)) fail("{}: 'rope_freq_factors' holds {}", src, v.dump());
      c.rope_freq_factors.push_back(v.get<float>());
    }
  }
  c.attention_bias = fam->qkv_bias || (j.contains("attention_bias") && j["attention_bias"] == true);
  if (j.contains("mlp_bias") && j["mlp_bias"] == true) fail("{}: mlp_bias is not supported", src);
  if (fam->sliding_window) {
    c.sliding_window = get_int_or(j, "sliding_window", 0, src);
    if (c.sliding_window < 0) fail("{}: sliding_window {} is negative", src, c.sliding_window);
    read_layer_types(j, c, src);
  } else if (j.contains("use_sliding_window") && j["use_sliding_window"] == true) {
    fail("{}: use_sliding_window (sliding-window attention in some layers) is not supported", src);
  }
  const auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && !tie->is_null() && !tie->is_boolean()) fail("{}: tie_word_embeddings is not a boolean", src);
  c.tie_embeddings = tie != j.end() && tie->is_boolean() ? tie->get<bool>() : fam->tied_by_default;
  c.bos_token_id = static_cast<int32_t>(get_int_or(j, "bos_token_id", -1, src));
  const auto eos = j.find("eos_token_id");
  if (eos != j.end() && !eos->is_null()) {
    if (eos->is_number_integer()) c.eos_token_ids.push_back(eos->get<int32_t>());
    else if (eos->is_array())
      for (const auto& e : *eos) {
        if (!e.is_number_integer()) fail("{}: eos_token_id list holds a non-integer {}", src, e.dump());
        c.eos_token_ids.push_back(e.get<int32_t>());
      }
    else fail("{}: eos_token_id is neither an integer nor a list", src);
  }
  read_gemma_fields(j, *fam, c, src);
  check_sizes(c, src);
  return c;
}

ModelConfig load_hf_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  try {
    return config_from_hf_json(nlohmann::json::parse(in), path);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
}

ModelConfig config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch_name = f.get_string("general.architecture");
  const Family* fam = find_family(c.arch_name);
  if (!fam) fail("{}: unsupported architecture {} (known: {})", f.path(), c.arch_name, family_names());
  c.arch = fam->arch;
  const std::string a = c.arch_name + ".";
  c.name = f.get_string_or("general.name", "");
  c.n_layers = f.get_int(a + "block_count");
  c.hidden_size = f.get_int(a + "embedding_length");
  c.intermediate_size = f.get_int(a + "feed_forward_length");
  c.n_heads = f.get_int(a + "attention.head_count");
  c.n_kv_heads = f.get_int_or(a + "attention.head_count_kv", c.n_heads);
  c.head_dim = f.get_int_or(a + "attention.key_length", c.n_heads > 0 ? c.hidden_size / c.n_heads : 0);
  c.max_position = f.get_int_or(a + "context_length", 0);
  c.rms_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = static_cast<float>(f.get_float_or(a + "rope.freq_base", 10000.0));
  // llama.cpp: a missing type means linear, a factor of 0 (or 1) means no scaling.
  const std::string scaling = f.get_string_or(a + "rope.scaling.type", "linear");
  const double factor = f.get_float_or(a + "rope.scaling.factor", 0.0);
  if (scaling != "none" && factor != 0.0 && factor != 1.0)
    fail("{}: rope scaling '{}' (factor {}) is not supported", f.path(), scaling, factor);
  // Llama 3's scaled frequencies: llama.cpp's converter stores the factors as a tensor.
  if (const GgufTensorInfo* ff = f.find_tensor("rope_freqs.weight")) {
    if (ff->type != GgmlType::F32 || ff->ne.size() != 1 || ff->ne[0] != c.head_dim / 2)
      fail("{}: rope_freqs.weight should be F32 [{}]", f.path(), c.head_dim / 2);
    c.rope_freq_factors.resize(static_cast<size_t>(ff->ne[0]));
    std::memcpy(c.rope_freq_factors.data(), f.tensor_data(*ff), c.rope_freq_factors.size() * sizeof(float));
    for (float v : c.rope_freq_factors)
      if (!(v > 0.0f) || !std::isfinite(v)) fail("{}: rope_freqs.weight holds {}", f.path(), v);
  }
  // GGUF has no key for it: Qwen2 always has q/k/v biases; other files have them if they store them.
  c.attention_bias = fam->qkv_bias || f.find_tensor("blk.0.attn_q.bias") != nullptr;
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.ne.size() != 2) fail("{}: token_embd.weight has {} dims, expected 2", f.path(), emb.ne.size());
  c.vocab_size = emb.ne[1];
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  if (fam->sliding_window) c.sliding_window = f.get_int_or(a + "attention.sliding_window", 0);
  if (c.sliding_window < 0) fail("{}: {}attention.sliding_window {} is negative", f.path(), a, c.sliding_window);
  if (fam->arch == Arch::Gemma3) {
    // What llama.cpp assumes for this architecture, with no key for it: every 6th layer global,
    // the local layers' RoPE base 10000, the query scale 1/√head_dim.
    if (c.sliding_window > 0 && c.n_layers > 0 && c.n_layers <= 4096)
      for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers.push_back((l + 1) % 6 != 0);
    c.rope_local_theta = 10000.0f;
    if (c.head_dim > 0) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  }
  c.bos_token_id = static_cast<int32_t>(f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  if (f.has("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids.push_back(static_cast<int32_t>(f.get_int("tokenizer.ggml.eos_token_id")));
  check_sizes(c, f.path());
  return c;
}

std::vector<std::pair<std::string, Shape>> teacher_tensor_list(const ModelConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, d = c.head_dim;
  const int64_t q = c.n_heads * d, kv = c.n_kv_heads * d;
  const Family& fam = family(c.arch);
  std::vector<std::pair<std::string, Shape>> out;
  out.emplace_back("model.embed_tokens.weight", Shape{c.vocab_size, C});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", Shape{C});
    out.emplace_back(p + "self_attn.q_proj.weight", Shape{q, C});
    out.emplace_back(p + "self_attn.k_proj.weight", Shape{kv, C});
    out.emplace_back(p + "self_attn.v_proj.weight", Shape{kv, C});
    if (has_qkv_bias(c)) {
      out.emplace_back(p + "self_attn.q_proj.bias", Shape{q});
      out.emplace_back(p + "self_attn.k_proj.bias", Shape{kv});
      out.emplace_back(p + "self_attn.v_proj.bias", Shape{kv});
    }
    if (fam.qk_norm) {
      out.emplace_back(p + "self_attn.q_norm.weight", Shape{d});
      out.emplace_back(p + "self_attn.k_norm.weight", Shape{d});
    }
    out.emplace_back(p + "self_attn.o_proj.weight", Shape{C, q});
    if (fam.post_attn_norm) out.emplace_back(p + fam.post_attn_norm + ".weight", Shape{C});
    out.emplace_back(p + fam.mlp_norm + ".weight", Shape{C});
    out.emplace_back(p + "mlp.gate_proj.weight", Shape{I, C});
    out.emplace_back(p + "mlp.up_proj.weight", Shape{I, C});
    out.emplace_back(p + "mlp.down_proj.weight", Shape{C, I});
    if (fam.post_mlp_norm) out.emplace_back(p + fam.post_mlp_norm + ".weight", Shape{C});
  }
  out.emplace_back("model.norm.weight", Shape{C});
  if (!c.tie_embeddings) out.emplace_back("lm_head.weight", Shape{c.vocab_size, C});
  return out;
}

}  // namespace arwkv
