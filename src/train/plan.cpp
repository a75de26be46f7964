// The memory plan of a stage (plan.h): the buffers this program makes, sized from shapes.
#include "train/plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "model/student/student.h"
#include "model/teacher/teacher_tensors.h"
#include "train/objective.h"
#include "train/objectives.h"
#include "train/student_backward.h"

namespace arwkv {
namespace {

constexpr uint64_t kAlign = 64;
constexpr uint64_t kRuntime = 160ull << 20;  // program, libraries, OpenBLAS and OpenMP buffers, data pages

uint64_t aligned(uint64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
uint64_t f32(int64_t a, int64_t b = 1, int64_t c = 1, int64_t d = 1) {
  return aligned(static_cast<uint64_t>(a) * static_cast<uint64_t>(b) * static_cast<uint64_t>(c) * static_cast<uint64_t>(d) * 4);
}

// The depth of a tensor as StudentBackprop counts it: −1 embedding, its layer, L final norm,
// L + 1 untied head.
int64_t level_of(const StudentConfig& cfg, const std::string& name) {
  const int64_t L = cfg.base.n_layers;
  if (name == "model.embed_tokens.weight") return -1;
  if (name == "model.norm.weight") return L;
  if (name == "lm_head.weight") return L + 1;
  const std::string prefix = "model.layers.";
  return std::stoll(name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size()));
}

// Student::Workspace of `rows` tokens and `logit_rows` logits (student_load.cpp).
uint64_t student_workspace_bytes(const StudentConfig& cfg, int64_t rows, int64_t logit_rows) {
  const ModelConfig& b = cfg.base;
  const int64_t C = b.hidden_size, F = b.intermediate_size, q_dim = b.n_heads * b.head_dim;
  const int64_t P = cfg.has_gate ? 6 : 5;
  const int64_t rank = std::max({cfg.decay_lora, cfg.iclr_lora, cfg.value_lora, cfg.gate_lora, 1});
  return 4 * f32(rows) + 15 * f32(rows, C) + f32(P, rows, C) + f32(rows, rank) + 2 * f32(rows, q_dim) +
         2 * f32(rows, F) + f32(logit_rows, b.vocab_size);
}

// Teacher::Workspace of `rows` tokens without logits (teacher_load.cpp).
uint64_t teacher_workspace_bytes(const ModelConfig& c, int64_t rows) {
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  return 4 * f32(rows) + 3 * f32(rows, c.hidden_size) + 2 * f32(rows, q_dim) + 2 * f32(rows, kv_dim) +
         2 * f32(rows, c.intermediate_size) + f32(0);
}

std::string mib(uint64_t b) { return fmt::format("{:.0f} MiB", static_cast<double>(b) / (1 << 20)); }

}  // namespace

uint64_t student_arena_bytes(const StudentConfig& cfg, int64_t B, int64_t T, const std::vector<std::string>& groups,
                             bool recompute, bool align) {
  const ModelConfig& c = cfg.base;
  const int64_t L = c.n_layers, R = B * T, C = c.hidden_size, F = c.intermediate_size, P = cfg.has_gate ? 6 : 5;
  const int64_t H = cfg.n_wkv_heads(), N = cfg.head_size;
  const int64_t max_rank = std::max<int64_t>({cfg.decay_lora, cfg.iclr_lora, cfg.value_lora, cfg.has_gate ? cfg.gate_lora : 1});
  int64_t lowest = L + 1;
  for (const TensorSpec& s : student_tensor_list(cfg))
    if (student_tensor_trains(cfg, s.name, groups)) lowest = std::min(lowest, level_of(cfg, s.name));
  uint64_t bytes = 5 * f32(R) + 16 * f32(R, C) + 2 * f32(B, H, N, N) + 2 * f32(B, C) + f32(P, B, T, C) + f32(R, max_rank);
  if (!align) bytes += f32(L + 1, R, C) + 4 * f32(R, C) + 3 * f32(R, F);  // residual stream, head and MLP gradients
  if (!cfg.pure_rwkv() && !align) {
    const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    bytes += 2 * f32(R, qd) + 2 * f32(R, kvd);
  }
  auto acts = [&](bool wkv) {
    uint64_t a = f32(R, C);
    if (wkv) {
      a += f32(P, B, T, C) + 14 * f32(R, C) + f32(R, cfg.decay_lora) + f32(R, cfg.iclr_lora) + f32(R, cfg.value_lora);
      if (cfg.has_gate) a += f32(R, cfg.gate_lora);
    }
    if (!align) a += 2 * f32(R, C) + 3 * f32(R, F);
    const Family& fam = family(c.arch);  // outputs before their post norms
    if (!align) a += (fam.post_attn_norm ? f32(R, C) : 0) + (fam.post_mlp_norm ? f32(R, C) : 0);
    return a;
  };
  bytes += acts(true);  // the shared set
  for (int64_t l = 0; l < L; ++l) {
    const bool wkv = cfg.is_wkv_layer(l);
    if (!recompute && l >= lowest && (wkv || !align)) bytes += acts(wkv);
  }
  return bytes;
}

MemoryPlan plan_stage(const PlanInput& in) {
  const StudentConfig& cfg = in.student;
  const ModelConfig& base = cfg.base;
  const bool align = in.kind == "align", kd = in.kind == "kd";
  if (!align && !kd && in.kind != "sft" && in.kind != "dpo") fail("plan: unknown stage kind '{}'", in.kind);
  for (const std::string& g : in.train)
    if (!is_parameter_group(g)) fail("plan: unknown parameter group '{}'", g);
  std::optional<DType> frozen;
  if (in.frozen_dtype == "f32") frozen = DType::F32;
  else if (in.frozen_dtype == "bf16") frozen = DType::BF16;
  else if (in.frozen_dtype == "f16") frozen = DType::F16;
  else if (in.frozen_dtype != "stored") fail("plan: frozen dtype '{}' is not stored, f32, bf16 or f16", in.frozen_dtype);
  if ((align || kd) && !in.teacher) fail("plan: a {} stage needs a teacher", in.kind);
  const std::vector<std::string> groups = align ? std::vector<std::string>{"time_mix"} : in.train;
  if (in.ranks < 1 || in.batch < in.ranks) fail("plan: batch {} cannot be split over {} ranks", in.batch, in.ranks);
  // A rank's rows: the most any rank gets (trainer.cpp's rank_rows).
  const int64_t B = (in.batch + in.ranks - 1) / in.ranks, T = in.seq_len, R = B * T, V = base.vocab_size, C = base.hidden_size;

  // Student weights as Student holds them: the stacked token-shift mixes one [P, C] tensor a layer.
  uint64_t trained_bytes = 0, frozen_bytes = 0, grads = 0, largest = 0;
  MemoryPlan plan;
  for (const TensorSpec& s : student_tensor_list(cfg)) {
    const bool trains = student_tensor_trains(cfg, s.name, groups);
    const uint64_t n = static_cast<uint64_t>(s.shape.numel());
    const bool mix = s.name.find(".time_mixer.x_") != std::string::npos;
    if (trains) plan.trained_parameters += n;
    if (mix) {  // the x_r plane carries the whole stacked tensor
      if (s.name.ends_with(".x_r")) {
        const uint64_t b = f32(cfg.has_gate ? 6 : 5, C);
        (trains ? trained_bytes : frozen_bytes) += b;
        if (trains) grads += b;
      }
      continue;
    }
    DType held = DType::F32;
    if (!trains && student_tensor_may_be_compact(s)) {
      const auto it = in.student_stored.find(s.name);
      held = frozen ? *frozen : it != in.student_stored.end() ? it->second : DType::F32;
    }
    const uint64_t b = aligned(n * (held == DType::F32 ? 4 : 2));
    (trains ? trained_bytes : frozen_bytes) += b;
    // Written: an fp32 tensor as a host copy and its encoded bytes, a compact one as its bytes.
    largest = std::max(largest, held == DType::F32 ? 8 * n : 2 * n);
    if (trains) grads += aligned(n * 4);
  }
  // Sharded: each rank's range of the flattened parameters (optim.h shard_parts), the longest.
  const uint64_t shards = in.zero >= 1 ? static_cast<uint64_t>(in.ranks) : 1;
  const uint64_t adam = 2 * 4 * ((plan.trained_parameters + shards - 1) / shards);
  const uint64_t weights = trained_bytes + frozen_bytes;
  const uint64_t arena = student_arena_bytes(cfg, B, T, groups, in.recompute, align);
  const int64_t t_hidden = in.teacher ? in.teacher->hidden_size : 1, n = std::min<int64_t>(R, head_chunk_rows(V));
  // StudentObjective::size_io: what the objective reads (align no head buffers, sft/dpo no teacher chunk).
  const int64_t h = align ? 0 : n, h2 = kd && in.ce_weight > 0 ? n : 0, t = in.teacher ? n : 0;
  const uint64_t io = 2 * f32(R) + 2 * f32(h, V) + f32(h2, V) + f32(h) + f32(h2) + f32(t, V) +
                      f32(t, std::max<int64_t>(in.top_k, 1)) + f32(t, t_hidden);
  const uint64_t teacher_w = in.teacher ? in.teacher_weight_bytes : 0;

  // The teacher's pass: one row's workspace; align keeps every layer's captured input and output
  // for the whole batch (host) and three [Lw, B·T, C] planes (device); kd its final hidden states.
  uint64_t teacher_pass = 0, align_io = 0, captures = 0;
  if (in.teacher) {
    teacher_pass = teacher_workspace_bytes(*in.teacher, T) + f32(T, t_hidden) + f32(R, t_hidden);
    if (kd && in.top_k > 0) teacher_pass += f32(n, V);  // host copy of a chunk for the top-k
  }
  if (align) {  // one row's captures at a time (run_teacher hands each row over before the next)
    const int64_t Lw = static_cast<int64_t>(cfg.wkv_layers.size());
    captures = 2 * static_cast<uint64_t>(in.teacher->n_layers) * f32(T, in.teacher->hidden_size);
    align_io = 3 * f32(Lw, R, C) + f32(R);
  }
  // Validation (agreement with the teacher): one row through the inference forward with its head
  // in chunks (Student::forward_chunks: a workspace of T rows, a fresh state with its own prefill
  // workspace, a host chunk of logits) beside a host chunk of the teacher's.
  const int64_t Lw = std::max<int64_t>(static_cast<int64_t>(cfg.wkv_layers.size()), 1);
  const uint64_t validation = in.teacher ? student_workspace_bytes(cfg, T, n) + student_workspace_bytes(cfg, 512, 1) +
                                               f32(Lw, cfg.n_wkv_heads(), cfg.head_size, cfg.head_size) + f32(Lw, C) +
                                               2 * f32(n, V)
                                         : 0;

  auto add = [&](const std::string& c, uint64_t b, std::string note = "") {
    if (b) plan.items.push_back({c, b, std::move(note)});
  };
  add("teacher weights", teacher_w, in.teacher ? "as stored (compact)" : "");
  add("student weights", weights, fmt::format("trained fp32 {}, frozen {}", mib(trained_bytes), mib(frozen_bytes)));
  add("gradients", grads, fmt::format("{:.1f} M trained parameters", static_cast<double>(plan.trained_parameters) / 1e6));
  add("AdamW moments", adam, shards > 1 ? fmt::format("m and v, fp32, a {}th of them (zero = 1)", shards) : "m and v, fp32");
  add("activations", arena, in.recompute ? "recompute: one layer's set" : "every layer a backward visits");
  add("head chunks", io, fmt::format("{} rows of {} logits at a time", n, V));
  add("teacher pass", teacher_pass + align_io, align ? "one row, and every layer's inputs and targets" : "one row");
  add("teacher captures", captures, "align: one row's attention inputs and outputs, every layer");
  add("validation", validation, "one row's whole-sequence logits");
  add("runtime", kRuntime, "program, libraries, thread buffers");

  const uint64_t resident = kRuntime + weights + teacher_w + grads + adam + arena + io + align_io;
  plan.phases["load"] = kRuntime + std::max(in.student_file_bytes + weights, weights + in.teacher_file_bytes + teacher_w);
  plan.phases["step"] = resident + teacher_pass + captures;
  plan.phases["validation"] = resident + teacher_pass + captures + validation;
  plan.phases["checkpoint"] = resident + largest;
  for (const auto& [phase, b] : plan.phases)
    if (b > plan.peak) plan.peak = b, plan.peak_phase = phase;
  return plan;
}

uint64_t teacher_held_bytes(const ModelConfig& cfg, const Checkpoint* ck, DType dtype) {
  const bool tied = cfg.tie_embeddings || (ck && !ck->has("lm_head.weight"));
  uint64_t total = 0;
  for (const TensorSpec& s : teacher_tensors(cfg)) {
    if (s.name == "lm_head.weight" && tied) continue;
    DType dt = s.shape.ndim != 2 ? DType::F32 : ck ? ck->stored_dtype(s.name) : dtype;
    const int64_t cols = s.shape[s.shape.ndim - 1];
    if (cols % dtype_block(dt) != 0) dt = DType::F32;
    total += aligned(static_cast<uint64_t>(s.shape.numel() / cols) * dtype_row_bytes(dt, cols));
  }
  return total;
}

ModelConfig known_shape(const std::string& name) {
  struct Shape_ {
    const char* name;
    Arch arch;
    int64_t C, F, L, H, Hkv, d, V;
    bool tied;
  };
  // From the models' published config.json files.
  static const Shape_ shapes[] = {
      {"smollm2-135m", Arch::Llama, 576, 1536, 30, 9, 3, 64, 49152, true},
      {"qwen2.5-0.5b", Arch::Qwen2, 896, 4864, 24, 14, 2, 64, 151936, true},
      {"qwen2.5-1.5b", Arch::Qwen2, 1536, 8960, 28, 12, 2, 128, 151936, true},
      {"qwen2.5-7b", Arch::Qwen2, 3584, 18944, 28, 28, 4, 128, 152064, false},
      {"qwen2.5-32b", Arch::Qwen2, 5120, 27648, 64, 40, 8, 128, 152064, false},
      {"qwen3-0.6b", Arch::Qwen3, 1024, 3072, 28, 16, 8, 128, 151936, true},
      {"qwen3-8b", Arch::Qwen3, 4096, 12288, 36, 32, 8, 128, 151936, false},
  };
  for (const Shape_& s : shapes)
    if (name == s.name) {
      ModelConfig c;
      c.arch = s.arch;
      c.arch_name = family(s.arch).name;
      c.name = s.name;
      c.hidden_size = s.C, c.intermediate_size = s.F, c.n_layers = s.L, c.n_heads = s.H, c.n_kv_heads = s.Hkv;
      c.head_dim = s.d, c.vocab_size = s.V, c.tie_embeddings = s.tied, c.attention_bias = family(s.arch).qkv_bias;
      c.max_position = 32768;
      return c;
    }
  fail("plan: unknown model shape '{}' ({})", name, fmt::join(known_shape_names(), ", "));
}

std::vector<std::string> known_shape_names() {
  return {"smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b", "qwen2.5-32b", "qwen3-0.6b", "qwen3-8b"};
}

}  // namespace arwkv
