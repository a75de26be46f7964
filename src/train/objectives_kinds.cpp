// The align, kd and sft objectives (objectives.h) and their registration as stage kinds.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "formats/checkpoint.h"
#include "model/student/student_checkpoint.h"
#include "train/config.h"
#include "tokenizer/tokenizer.h"
#include "train/objectives.h"

namespace arwkv {
namespace {

Tensor layer_rows(const Tensor& all, int64_t j, int64_t r0, int64_t r1) {  // rows r0..r1 of all[j] ([Lw, R, C])
  return all.slice_rows(j, j + 1).reshape({all.dim(1), all.dim(2)}).slice_rows(r0, r1);
}

// The teacher's k largest logits of one row (ties: the lower id first), as ids and logits.
void top_k_row(const float* logits, int64_t V, int64_t k, int32_t* ids, float* values) {
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  for (int64_t i = 0; i < k; ++i) ids[i] = order[static_cast<size_t>(i)], values[i] = logits[order[static_cast<size_t>(i)]];
}

}  // namespace

// ---- align --------------------------------------------------------------------------------------

AlignObjective::AlignObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher, bool recompute,
                               std::string tokenizer_json)
    : StudentObjective(std::move(student), std::move(teacher),
                       StudentGradOptions{.groups = {"time_mix"}, .recompute = recompute, .align = true},
                       std::move(tokenizer_json)) {
  if (!teacher_) fail("align: needs a teacher");
  head_buffers_ = false;  // its loss is on the time-mix outputs; validation reads only the teacher's chunk
  const ModelConfig &s = student_->config(), &t = teacher_->config();
  if (s.hidden_size != t.hidden_size || s.n_layers != t.n_layers)
    fail("align: the teacher ({} layers of width {}) is not the one the student was converted from ({} of {})",
         t.n_layers, t.hidden_size, s.n_layers, s.hidden_size);
}

void AlignObjective::forward_layers(const Batch& batch, bool teacher_logits) {
  read_batch(batch);
  const std::vector<int>& wkv = student_->student_config().wkv_layers;
  const int64_t Lw = static_cast<int64_t>(wkv.size()), R = B_ * T_, C = student_->config().hidden_size;
  if (Lw == 0) fail("align: the student has no time-mix layer");
  const bool post_norm = family(student_->config().arch).post_attn_norm != nullptr;
  if (!inputs_.data || inputs_.dim(1) < R) {
    const size_t plane = static_cast<size_t>(Lw * R * C) * 4, loss = static_cast<size_t>(R) * 4 + 64;
    const size_t rc = post_norm ? static_cast<size_t>(R * C) * 4 : 0;
    layer_io_ = Buffer{};
    layer_io_ = ops().alloc(3 * plane + loss + 2 * rc);
    char* p = static_cast<char*>(layer_io_.data());
    inputs_ = Tensor{p, Shape{Lw, R, C}, DType::F32, ops().device()};
    outputs_ = Tensor{p + plane, Shape{Lw, R, C}, DType::F32, ops().device()};
    targets_all_ = Tensor{p + 2 * plane, Shape{Lw, R, C}, DType::F32, ops().device()};
    layer_loss_ = Tensor{p + 3 * plane, Shape{R}, DType::F32, ops().device()};
    if (post_norm) {
      normed_ = Tensor{p + 3 * plane + loss, Shape{R, C}, DType::F32, ops().device()};
      dout_ = Tensor{p + 3 * plane + loss + rc, Shape{R, C}, DType::F32, ops().device()};
    }
  }
  const Shape lrc{Lw, R, C};
  const Tensor in{inputs_.data, lrc, DType::F32, ops().device()}, out{outputs_.data, lrc, DType::F32, ops().device()};
  const Tensor tgt{targets_all_.data, lrc, DType::F32, ops().device()};
  run_teacher(
      batch,
      [&](int64_t b, const TeacherCapture& cap) {  // each row's layers into place as soon as they are made
        for (int64_t j = 0; j < Lw; ++j) {
          const size_t l = static_cast<size_t>(wkv[static_cast<size_t>(j)]);
          ops().upload(layer_rows(in, j, b * T_, (b + 1) * T_), cap.attn_input[l].values.data());
          ops().upload(layer_rows(tgt, j, b * T_, (b + 1) * T_), cap.attn_output[l].values.data());
        }
      },
      teacher_logits);
  if (post_norm)  // the targets as the residual stream receives them
    for (int64_t j = 0; j < Lw; ++j) {
      const Student::Layer& w = student_->layers()[static_cast<size_t>(wkv[static_cast<size_t>(j)])];
      const Tensor t = layer_rows(tgt, j, 0, R);
      ops().rmsnorm(t, t, w.post_attn_norm, student_->config().rms_eps);
    }

  StudentBackprop& bp = backprop_;
  bp.begin(B_, T_, resets_);
  for (int64_t j = 0; j < Lw; ++j) bp.time_mix_forward(wkv[static_cast<size_t>(j)], layer_rows(in, j, 0, R), layer_rows(out, j, 0, R));
}

double AlignObjective::run(const Batch& batch, bool backward) {
  forward_layers(batch, !backward);  // validation compares logits too (agreement)
  StudentBackprop& bp = backprop_;
  const std::vector<int>& wkv = student_->student_config().wkv_layers;
  const int64_t Lw = static_cast<int64_t>(wkv.size()), R = B_ * T_, C = student_->config().hidden_size;
  const Shape lrc{Lw, R, C};
  const Tensor out{outputs_.data, lrc, DType::F32, ops().device()}, tgt{targets_all_.data, lrc, DType::F32, ops().device()};
  const double scale = 1.0 / static_cast<double>(Lw * R);
  const Tensor loss = layer_loss_.slice_rows(0, R);
  double total = 0.0;
  for (int64_t j = 0; j < Lw; ++j) {
    const Tensor o = layer_rows(out, j, 0, R);
    const Tensor* post = nullptr;  // the layer's norm after the time mixing, where the family has one
    if (const Student::Layer& w = student_->layers()[static_cast<size_t>(wkv[static_cast<size_t>(j)])];
        w.post_attn_norm.data)
      post = &w.post_attn_norm;
    if (!post) {
      ops().align_loss(loss, backward ? o : Tensor{}, o, layer_rows(tgt, j, 0, R), Tensor{}, static_cast<float>(scale));
    } else {  // the loss on RMSNorm(o)·w, its gradient back through the norm into o
      const float eps = student_->config().rms_eps;
      const Tensor n = normed_.slice_rows(0, R), d = dout_.slice_rows(0, R);
      ops().rmsnorm(n, o, *post, eps);
      ops().align_loss(loss, backward ? n : Tensor{}, n, layer_rows(tgt, j, 0, R), Tensor{}, static_cast<float>(scale));
      if (backward) {
        ops().rmsnorm_backward(d, Tensor{}, n, o, *post, eps);
        ops().copy(o, d);
      }
    }
    total += sum_of(loss);
  }
  if (backward)  // the first time-mix layer last: it collects v_first's gradient from the others
    for (int64_t j = Lw - 1; j >= 0; --j) bp.time_mix_backward(wkv[static_cast<size_t>(j)], layer_rows(out, j, 0, R));
  return total * scale;
}

double AlignObjective::forward_backward(const Batch& batch) { return run(batch, true); }

ValidationResult AlignObjective::validate(const Batch& batch) {
  ValidationResult r;
  r.loss = run(batch, false);
  agreement(batch, r);
  return r;
}

// ---- kd -----------------------------------------------------------------------------------------

KdObjective::KdObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher,
                         const std::vector<std::string>& groups, const KdOptions& kd, bool recompute,
                         std::string tokenizer_json)
    : StudentObjective(std::move(student), std::move(teacher),
                       StudentGradOptions{.groups = groups, .recompute = recompute, .align = false},
                       std::move(tokenizer_json)),
      kd_(kd) {
  if (!teacher_) fail("kd: needs a teacher");
  const int64_t V = student_->config().vocab_size;
  if (teacher_->config().vocab_size != V)
    fail("kd: the teacher's vocabulary ({}) is not the student's ({}); they must share the tokenizer",
         teacher_->config().vocab_size, V);
  if (!(kd.temperature > 0.0f)) fail("kd: temperature must be positive, got {}", kd.temperature);
  if (kd.top_k < 0 || kd.top_k > V) fail("kd: top_k {} outside 0 .. {}", kd.top_k, V);
  if (kd.ce_weight < 0.0f) fail("kd: ce_weight must not be negative, got {}", kd.ce_weight);
  top_k_ = kd.top_k;
  second_loss_ = kd.ce_weight > 0.0f;
}

double KdObjective::run(bool backward) {
  const int64_t V = student_->config().vocab_size, K = kd_.top_k;
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(n_counted_, 1));
  std::vector<int32_t> ids(static_cast<size_t>(std::max<int64_t>(K, 1)));
  std::vector<float> values(ids.size()), teacher;
  const double total = head_pass(backward, [&](int64_t r0, Tensor logits, Tensor dlogits, Tensor loss) {
    const int64_t n = logits.rows();
    const Tensor mask = counted(r0, n), t_logits = teacher_logits(r0, n);  // the teacher's rows r0 .. r0 + n
    if (K == 0) {
      ops().kl_div(loss, dlogits, logits, t_logits, mask, kd_.temperature, scale);
    } else {
      teacher.resize(static_cast<size_t>(n * V));
      ops().download(teacher.data(), t_logits);
      for (int64_t i = 0; i < n; ++i) {  // chunk_a_ now holds [n, K] values
        top_k_row(teacher.data() + i * V, V, K, ids.data(), values.data());
        ops().upload(Tensor{static_cast<float*>(chunk_a_.data) + i * K, Shape{1, K}, DType::F32, ops().device()},
                     values.data());
        ops().upload(chunk_b_.slice_rows(i, i + 1), ids.data());
      }
      const Tensor top{chunk_a_.data, Shape{n, K}, DType::F32, ops().device()};
      ops().kl_div_topk(loss, dlogits, logits, chunk_b_.slice_rows(0, n), top, mask, kd_.temperature, scale);
    }
    if (kd_.ce_weight > 0.0f) {  // + α·cross-entropy of the next token
      const Tensor ce = loss2_.slice_rows(0, n), dce = dlogits.data ? dlogits2_.slice_rows(0, n) : Tensor{};
      ops().cross_entropy(ce, dce, logits, targets(r0, n), mask, kd_.ce_weight * scale);
      if (dlogits.data) ops().add(dlogits, dlogits, dce);
      ops().scale(ce, kd_.ce_weight);
      ops().add(loss, loss, ce);
    }
  });
  return total * scale;
}

double KdObjective::forward_backward(const Batch& batch) {
  read_batch(batch);
  run_teacher(batch);
  return run(true);
}

ValidationResult KdObjective::validate(const Batch& batch) {
  read_batch(batch);
  run_teacher(batch);
  ValidationResult r;
  r.loss = run(false);
  agreement(batch, r);
  return r;
}

// ---- sft ----------------------------------------------------------------------------------------

SftObjective::SftObjective(std::unique_ptr<Student> student, const std::vector<std::string>& groups, bool recompute,
                           std::string tokenizer_json)
    : StudentObjective(std::move(student), nullptr,
                       StudentGradOptions{.groups = groups, .recompute = recompute, .align = false},
                       std::move(tokenizer_json)) {}

double SftObjective::forward_backward(const Batch& batch) {
  read_batch(batch);
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(n_counted_, 1));
  return scale * head_pass(true, [&](int64_t r0, Tensor logits, Tensor dlogits, Tensor loss) {
           ops().cross_entropy(loss, dlogits, logits, targets(r0, logits.rows()), counted(r0, logits.rows()), scale);
         });
}

ValidationResult SftObjective::validate(const Batch& batch) {
  read_batch(batch);
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(n_counted_, 1));
  ValidationResult r;
  r.loss = scale * head_pass(false, [&](int64_t r0, Tensor logits, Tensor, Tensor loss) {
             ops().cross_entropy(loss, Tensor{}, logits, targets(r0, logits.rows()), counted(r0, logits.rows()), scale);
           });
  return r;
}

// ---- dpo ----------------------------------------------------------------------------------------

namespace {

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }

// Calls f(b, offset, n) for each batch row b that rows [r0, r0 + n) of a chunk cover: the row's
// tokens sit at [offset, offset + n) of the chunk.
template <class F>
void for_rows(int64_t r0, int64_t n, int64_t T, F&& f) {
  for (int64_t r = r0; r < r0 + n;) {
    const int64_t b = r / T, end = std::min(r0 + n, (b + 1) * T);
    f(b, r - r0, end - r);
    r = end;
  }
}

}  // namespace

DpoObjective::DpoObjective(std::unique_ptr<Student> student, const std::vector<std::string>& groups, double beta,
                           bool recompute, std::string tokenizer_json)
    : StudentObjective(std::move(student), nullptr,
                       StudentGradOptions{.groups = groups, .recompute = recompute, .align = false},
                       std::move(tokenizer_json)),
      beta_(beta) {}

bool DpoObjective::row_counts(const Batch& batch, int64_t b) {
  for (int64_t t = 0; t < batch.T; ++t)
    if (batch.target_valid(b, t)) return true;
  return false;
}

int64_t DpoObjective::count(const Batch& batch) const {
  int64_t n = 0;
  for (int64_t b = 0; b + 1 < batch.B; b += 2) n += row_counts(batch, b) && row_counts(batch, b + 1);
  return n;
}

double DpoObjective::margins(const Batch& batch) {
  if (batch.B % 2 != 0 || batch.ref.size() != batch.tokens.size())
    fail("dpo: the batch is not preference data (rows in pairs with reference log-probabilities; `arwkv pairs`)");
  read_batch(batch);
  std::vector<double> logp(static_cast<size_t>(B_), 0.0), ref(static_cast<size_t>(B_), 0.0);
  for (int64_t b = 0; b < B_; ++b)
    for (int64_t t = 0; t < T_; ++t)
      if (counted_[static_cast<size_t>(b * T_ + t)]) ref[b] += batch.ref[batch.at(b, t + 1)];
  std::vector<float> loss;
  head_pass(false, [&](int64_t r0, Tensor logits, Tensor, Tensor l) {
    ops().cross_entropy(l, Tensor{}, logits, targets(r0, logits.rows()), counted(r0, logits.rows()), 1.0f);
    loss.resize(static_cast<size_t>(l.numel()));
    ops().download(loss.data(), l);
    for (int64_t i = 0; i < l.numel(); ++i) logp[(r0 + i) / T_] -= loss[i];
  });
  z_.assign(static_cast<size_t>(B_ / 2), 0.0);
  live_.assign(static_cast<size_t>(B_ / 2), 0);
  double total = 0.0;
  for (int64_t j = 0; j < B_ / 2; ++j) {
    live_[j] = row_counts(batch, 2 * j) && row_counts(batch, 2 * j + 1);
    if (!live_[j]) continue;
    z_[j] = beta_ * ((logp[2 * j] - ref[2 * j]) - (logp[2 * j + 1] - ref[2 * j + 1]));
    total += softplus(-z_[j]);
  }
  pairs_ = count(batch);
  return pairs_ > 0 ? total / static_cast<double>(pairs_) : 0.0;
}

double DpoObjective::forward_backward(const Batch& batch) {
  const double loss = margins(batch);
  if (pairs_ == 0) return loss;
  std::vector<float> weight(static_cast<size_t>(B_), 0.0f);
  for (int64_t j = 0; j < B_ / 2; ++j) {
    if (!live_[j]) continue;
    const double w = beta_ * sigmoid(-z_[j]) / static_cast<double>(pairs_);
    weight[2 * j] = static_cast<float>(w);       // raising log π(chosen) lowers the loss
    weight[2 * j + 1] = static_cast<float>(-w);  // raising log π(rejected) raises it
  }
  head_pass(true, [&](int64_t r0, Tensor logits, Tensor dlogits, Tensor l) {
    for_rows(r0, logits.rows(), T_, [&](int64_t b, int64_t off, int64_t n) {
      ops().cross_entropy(l.slice_rows(off, off + n), dlogits.slice_rows(off, off + n), logits.slice_rows(off, off + n),
                          targets(r0 + off, n), counted(r0 + off, n), weight[b]);
    });
  });
  return loss;
}

ValidationResult DpoObjective::validate(const Batch& batch) {
  ValidationResult r;
  r.loss = margins(batch);
  return r;
}

// ---- registration -------------------------------------------------------------------------------

namespace {

struct LoadedStudent {
  std::unique_ptr<Student> model;
  std::string tokenizer_json;
};

// The stage's data must come from the student's tokenizer (when it has one) and fit its embedding.
void check_data(const RunContext& ctx, const std::string& tokenizer_json, int64_t vocab) {
  if (!ctx.data) return;
  if (tokenizer_json.empty()) {
    const int64_t max_id = ctx.data->manifest().max_token_id;
    if (max_id >= vocab)
      fail("{}: the data uses token id {}, but the student {} has only {} embedding rows", ctx.data->dir(), max_id,
           ctx.student_path, vocab);
    return;
  }
  ctx.data->check_tokenizer(Tokenizer(load_tokenizer_json(tokenizer_json)), vocab);
}

// The stage's student: what trains fp32, the other matrices as the stage's frozen_dtype says.
LoadedStudent load_student(const StageConfig& st, const RunContext& ctx, const std::vector<std::string>& groups) {
  ARWKV_ASSERT(ctx.ops != nullptr, "a run context without a backend");
  const std::unique_ptr<StudentCheckpoint> ck = StudentCheckpoint::open(ctx.student_path);
  check_data(ctx, ck->tokenizer_json_path(), ck->config().base.vocab_size);
  StudentOptions opt;
  if (st.frozen_dtype == "f32") opt.frozen = DType::F32;
  if (st.frozen_dtype == "bf16") opt.frozen = DType::BF16;
  if (st.frozen_dtype == "f16") opt.frozen = DType::F16;
  opt.trains = [cfg = ck->config(), groups](const std::string& name) { return student_tensor_trains(cfg, name, groups); };
  return {std::make_unique<Student>(*ck, *ctx.ops, opt), ck->tokenizer_json_path()};
}

std::unique_ptr<Teacher> load_teacher(const StageConfig& st, const RunContext& ctx) {
  const std::string path = !st.kd_teacher.empty() ? st.kd_teacher : ctx.run ? ctx.run->teacher : std::string{};
  if (path.empty()) fail("stage '{}': kind {} needs a teacher ([run] teacher or the stage's kd_teacher)", st.name, st.kind);
  const std::unique_ptr<Checkpoint> ck = Checkpoint::open(path);
  return std::make_unique<Teacher>(*ck, *ctx.ops);
}

}  // namespace

void register_student_objectives() {
  register_objective("align", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    for (const std::string& g : st.train)
      if (g != "time_mix") fail("stage '{}': align trains only time_mix, not '{}'", st.name, g);
    LoadedStudent s = load_student(st, ctx, {"time_mix"});
    return std::make_unique<AlignObjective>(std::move(s.model), load_teacher(st, ctx), st.recompute, s.tokenizer_json);
  });
  register_objective("kd", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    LoadedStudent s = load_student(st, ctx, st.train);
    const KdOptions kd{.temperature = static_cast<float>(st.temperature), .top_k = st.top_k,
                       .ce_weight = static_cast<float>(st.ce_weight)};
    return std::make_unique<KdObjective>(std::move(s.model), load_teacher(st, ctx), st.train, kd, st.recompute,
                                         s.tokenizer_json);
  });
  register_objective("sft", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    LoadedStudent s = load_student(st, ctx, st.train);
    return std::make_unique<SftObjective>(std::move(s.model), st.train, st.recompute, s.tokenizer_json);
  });
  register_objective("dpo", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    if (ctx.data && !ctx.data->manifest().pairs)
      fail("stage '{}': {} is not preference data (make it with `arwkv pairs`)", st.name, ctx.data->dir());
    LoadedStudent s = load_student(st, ctx, st.train);
    return std::make_unique<DpoObjective>(std::move(s.model), st.train, st.beta, st.recompute, s.tokenizer_json);
  });
}

}  // namespace arwkv
