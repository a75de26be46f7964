// The initial values of the student's time-mix parameters (SPEC §3 "Initialisation"), and the
// teacher → student weight transfer of RADLADS.
//
// Both inits share everything but r/k/v/o. With l the layer, L the layer count, n the channel,
// ddd = n/C, r01 = l/(L-1) (0 when L = 1) and r10 = 1 - l/L:
//   x_r = 1 - ddd^(0.2·r10)          x_w = x_a = 1 - ddd^(0.9·r10)       x_g = 1
//   x_k = 1 - (ddd^(0.9·r10) + 0.4·r01)      x_v = 1 - (ddd^(0.4·r10) + 0.6·r01)
//   w0  = -7 + 5·(n/(C-1))^(0.85 + √r01) + 0.5
//   w1 = a1 = v1 = 0; w2, a2, v2 orthogonal with gain 0.1 (rows orthonormal ×0.1 when rank ≤ C,
//   columns otherwise); a0 = 0; v0 = 1; k_k = 0.85; k_a = 1; r_k = 0.
//   Gate (our reading of "g1 = 0 and g2 chosen so that sigmoid(0)·g2 sums to 1 per channel"):
//   g1 = 0 and g2 = 2/Dg + E, where E is orthogonal with gain 0.1 and then centred so that every
//   column of E sums to 0. Then g = sigmoid(0)·Σ_d g2[d, c] = 1 exactly for every channel c, while
//   the differing rows of g2 break the symmetry between the Dg hidden units (a constant g2 would
//   give every column of g1 the same gradient forever).
//   Group norm (only with --group-norm; SPEC is silent): ln_x.weight = 1, ln_x.bias = 0.
// `arwkv` init: receptance, key, value, output fresh, normal with std 1/√C (SPEC is silent; this
// keeps x·Wᵀ at the scale of x).
// `transfer` init: receptance ← q_proj, key ← k_proj, value ← v_proj (each KV head repeated for its
// group of query heads), output ← o_proj; needs n_heads·head_dim == C.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

enum class InitKind { Arwkv, Transfer };

struct LoraRanks {
  int decay = 64, iclr = 64, value = 32, gate = 128;
};

// The paper's fixed ranks 64/64/32/128.
LoraRanks arwkv_lora_ranks();
// RADLADS: max(32, round(f/32)·32) with f = 1.8√C, 1.8√C, 1.3√C, 0.6·C^0.8.
LoraRanks lora_ranks_for_size(int64_t C);
int lora_rank_formula(double f);

// One token-shift mix vector ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g") of layer l, length C.
std::vector<float> token_shift_init(const std::string& which, int64_t layer, int64_t n_layers, int64_t C);
// w0 of layer l, length C.
std::vector<float> decay_bias_init(int64_t layer, int64_t n_layers, int64_t C);
// A rows × cols matrix with orthonormal rows (rows ≤ cols) or columns (rows > cols), times gain:
// modified Gram–Schmidt, done twice, of a seeded normal matrix, in double.
HostTensor orthogonal_init(int64_t rows, int64_t cols, double gain, uint64_t seed, const std::string& stream);
// g2 [Dg, C] as described above.
HostTensor gate_out_init(int64_t rank, int64_t C, uint64_t seed, const std::string& stream);

// The initial value of one time-mix tensor of `layer` (`suffix` as in time_mix_tensors:
// "x_r", "receptance.weight", "w1", ...), for the `arwkv` init; the random ones are drawn from
// the stream named by the tensor's full name.
HostTensor init_time_mix_tensor(const StudentConfig& c, int64_t layer, const std::string& suffix, uint64_t seed);

// key/value for transfer: kv_proj [n_kv_heads·head_dim, C] → [n_heads·head_dim, C], row
// h·head_dim + i taken from row (h / (n_heads/n_kv_heads))·head_dim + i.
HostTensor expand_kv_heads(const HostTensor& kv_proj, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim);

}  // namespace arwkv
