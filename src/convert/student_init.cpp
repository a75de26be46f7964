// Student time-mix initialisation (see student_init.h for the formulas and the choices made).
#include "convert/student_init.h"

#include <cmath>

#include "convert/init_rng.h"
#include "core/error.h"

namespace arwkv {

namespace {

struct LayerRatios {
  double r01, r10;
};

LayerRatios layer_ratios(int64_t layer, int64_t n_layers) {
  const double r01 = n_layers > 1 ? static_cast<double>(layer) / static_cast<double>(n_layers - 1) : 0.0;
  return {r01, 1.0 - static_cast<double>(layer) / static_cast<double>(n_layers)};
}

HostTensor filled(Shape s, float value) {
  HostTensor t(s);
  std::fill(t.values.begin(), t.values.end(), value);
  return t;
}

HostTensor from_vector(Shape s, std::vector<float> v) {
  HostTensor t;
  t.shape = s;
  t.values = std::move(v);
  ARWKV_ASSERT(static_cast<int64_t>(t.values.size()) == s.numel(), "size {} for shape {}", t.values.size(), s.str());
  return t;
}

HostTensor normal_init(Shape s, double std_dev, uint64_t seed, const std::string& stream) {
  InitRng rng(seed, stream);
  HostTensor t(s);
  for (float& x : t.values) x = static_cast<float>(std_dev * rng.normal());
  return t;
}

}  // namespace

LoraRanks arwkv_lora_ranks() { return {64, 64, 32, 128}; }

int lora_rank_formula(double f) { return std::max(32, static_cast<int>(std::lround(f / 32.0)) * 32); }

LoraRanks lora_ranks_for_size(int64_t C) {
  const double c = static_cast<double>(C), root = std::sqrt(c);
  return {lora_rank_formula(1.8 * root), lora_rank_formula(1.8 * root), lora_rank_formula(1.3 * root),
          lora_rank_formula(0.6 * std::pow(c, 0.8))};
}

std::vector<float> token_shift_init(const std::string& which, int64_t layer, int64_t n_layers, int64_t C) {
  const auto [r01, r10] = layer_ratios(layer, n_layers);
  std::vector<float> out(static_cast<size_t>(C));
  for (int64_t n = 0; n < C; ++n) {
    const double ddd = static_cast<double>(n) / static_cast<double>(C);
    double x;
    if (which == "x_r") x = 1.0 - std::pow(ddd, 0.2 * r10);
    else if (which == "x_w" || which == "x_a") x = 1.0 - std::pow(ddd, 0.9 * r10);
    else if (which == "x_k") x = 1.0 - (std::pow(ddd, 0.9 * r10) + 0.4 * r01);
    else if (which == "x_v") x = 1.0 - (std::pow(ddd, 0.4 * r10) + 0.6 * r01);
    else if (which == "x_g") x = 1.0;
    else ARWKV_ASSERT(false, "unknown token-shift parameter '{}'", which);
    out[static_cast<size_t>(n)] = static_cast<float>(x);
  }
  return out;
}

std::vector<float> decay_bias_init(int64_t layer, int64_t n_layers, int64_t C) {
  const double r01 = layer_ratios(layer, n_layers).r01;
  std::vector<float> out(static_cast<size_t>(C));
  for (int64_t n = 0; n < C; ++n) {
    const double pos = C > 1 ? static_cast<double>(n) / static_cast<double>(C - 1) : 0.0;
    out[static_cast<size_t>(n)] = static_cast<float>(-7.0 + 5.0 * std::pow(pos, 0.85 + std::sqrt(r01)) + 0.5);
  }
  return out;
}

HostTensor orthogonal_init(int64_t rows, int64_t cols, double gain, uint64_t seed, const std::string& stream) {
  const bool by_rows = rows <= cols;
  const int64_t count = by_rows ? rows : cols, len = by_rows ? cols : rows;
  InitRng rng(seed, stream);
  std::vector<double> v(static_cast<size_t>(count * len));
  for (double& x : v) x = rng.normal();
  for (int64_t i = 0; i < count; ++i) {
    double* vi = v.data() + i * len;
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t j = 0; j < i; ++j) {
        const double* vj = v.data() + j * len;
        double dot = 0.0;
        for (int64_t e = 0; e < len; ++e) dot += vi[e] * vj[e];
        for (int64_t e = 0; e < len; ++e) vi[e] -= dot * vj[e];
      }
      double norm = 0.0;
      for (int64_t e = 0; e < len; ++e) norm += vi[e] * vi[e];
      norm = std::sqrt(norm);
      ARWKV_ASSERT(norm > 1e-9, "degenerate vector {} in orthogonal init of {}", i, stream);
      for (int64_t e = 0; e < len; ++e) vi[e] /= norm;
    }
  }
  HostTensor t(Shape{rows, cols});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t.values[static_cast<size_t>(r * cols + c)] =
          static_cast<float>(gain * (by_rows ? v[static_cast<size_t>(r * len + c)] : v[static_cast<size_t>(c * len + r)]));
  return t;
}

HostTensor gate_out_init(int64_t rank, int64_t C, uint64_t seed, const std::string& stream) {
  HostTensor t = orthogonal_init(rank, C, 0.1, seed, stream);
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0.0;
    for (int64_t d = 0; d < rank; ++d) mean += t.values[static_cast<size_t>(d * C + c)];
    mean /= static_cast<double>(rank);
    for (int64_t d = 0; d < rank; ++d) {
      float& x = t.values[static_cast<size_t>(d * C + c)];
      x = static_cast<float>(x - mean + 2.0 / static_cast<double>(rank));
    }
  }
  return t;
}

HostTensor init_time_mix_tensor(const StudentConfig& c, int64_t layer, const std::string& suffix, uint64_t seed) {
  const int64_t C = c.base.hidden_size, L = c.base.n_layers;
  const Shape vec{1, 1, C};
  const std::string stream = time_mixer_name(layer, suffix);
  if (suffix.size() == 3 && suffix[0] == 'x' && suffix[1] == '_')
    return from_vector(vec, token_shift_init(suffix, layer, L, C));
  if (suffix == "w0") return from_vector(vec, decay_bias_init(layer, L, C));
  if (suffix == "receptance.weight" || suffix == "key.weight" || suffix == "value.weight" || suffix == "output.weight")
    return normal_init(Shape{C, C}, 1.0 / std::sqrt(static_cast<double>(C)), seed, stream);
  if (suffix == "w1") return filled(Shape{C, c.decay_lora}, 0.0f);
  if (suffix == "a1") return filled(Shape{C, c.iclr_lora}, 0.0f);
  if (suffix == "v1") return filled(Shape{C, c.value_lora}, 0.0f);
  if (suffix == "g1") return filled(Shape{C, c.gate_lora}, 0.0f);
  if (suffix == "w2") return orthogonal_init(c.decay_lora, C, 0.1, seed, stream);
  if (suffix == "a2") return orthogonal_init(c.iclr_lora, C, 0.1, seed, stream);
  if (suffix == "v2") return orthogonal_init(c.value_lora, C, 0.1, seed, stream);
  if (suffix == "g2") return gate_out_init(c.gate_lora, C, seed, stream);
  if (suffix == "a0") return filled(vec, 0.0f);
  if (suffix == "v0") return filled(vec, 1.0f);
  if (suffix == "k_k") return filled(vec, 0.85f);
  if (suffix == "k_a") return filled(vec, 1.0f);
  if (suffix == "r_k") return filled(Shape{c.n_wkv_heads(), c.head_size}, 0.0f);
  if (suffix == "ln_x.weight") return filled(Shape{C}, 1.0f);
  if (suffix == "ln_x.bias") return filled(Shape{C}, 0.0f);
  ARWKV_ASSERT(false, "no initialisation for time-mix tensor '{}'", suffix);
  return {};
}

HostTensor expand_kv_heads(const HostTensor& kv, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  ARWKV_ASSERT(kv.shape.ndim == 2 && kv.shape[0] == n_kv_heads * head_dim && n_heads % n_kv_heads == 0,
               "kv projection {} for {} heads, {} kv heads, head_dim {}", kv.shape.str(), n_heads, n_kv_heads, head_dim);
  const int64_t C = kv.shape[1], group = n_heads / n_kv_heads;
  HostTensor out(Shape{n_heads * head_dim, C});
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < head_dim; ++i) {
      const float* src = kv.values.data() + ((h / group) * head_dim + i) * C;
      std::copy(src, src + C, out.values.data() + (h * head_dim + i) * C);
    }
  return out;
}

}  // namespace arwkv
