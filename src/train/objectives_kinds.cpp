// The align, kd and sft objectives (objectives.h) and their registration as stage kinds.
#include <algorithm>
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
  const ModelConfig &s = student_->config(), &t = teacher_->config();
  if (s.hidden_size != t.hidden_size || s.n_layers != t.n_layers)
    fail("align: the teacher ({} layers of width {}) is not the one the student was converted from ({} of {})",
         t.n_layers, t.hidden_size, s.n_layers, s.hidden_size);
}

void AlignObjective::forward_layers(const Batch& batch, bool teacher_logits) {
  read_batch(batch);
  std::vector<TeacherCapture> caps;
  run_teacher(batch, &caps, teacher_logits);
  const std::vector<int>& wkv = student_->student_config().wkv_layers;
  const int64_t Lw = static_cast<int64_t>(wkv.size()), R = B_ * T_, C = student_->config().hidden_size;
  if (Lw == 0) fail("align: the student has no time-mix layer");
  if (!inputs_.data || inputs_.dim(1) < R) {
    const size_t plane = static_cast<size_t>(Lw * R * C) * 4, loss = static_cast<size_t>(R) * 4 + 64;
    layer_io_ = ops().alloc(3 * plane + loss);
    char* p = static_cast<char*>(layer_io_.data());
    inputs_ = Tensor{p, Shape{Lw, R, C}, DType::F32, ops().device()};
    outputs_ = Tensor{p + plane, Shape{Lw, R, C}, DType::F32, ops().device()};
    targets_all_ = Tensor{p + 2 * plane, Shape{Lw, R, C}, DType::F32, ops().device()};
    layer_loss_ = Tensor{p + 3 * plane, Shape{R}, DType::F32, ops().device()};
  }
  const Shape lrc{Lw, R, C};
  const Tensor in{inputs_.data, lrc, DType::F32, ops().device()}, out{outputs_.data, lrc, DType::F32, ops().device()};
  const Tensor tgt{targets_all_.data, lrc, DType::F32, ops().device()};
  for (int64_t j = 0; j < Lw; ++j)
    for (int64_t b = 0; b < B_; ++b) {
      const size_t l = static_cast<size_t>(wkv[static_cast<size_t>(j)]);
      ops().upload(layer_rows(in, j, b * T_, (b + 1) * T_), caps[static_cast<size_t>(b)].attn_input[l].values.data());
      ops().upload(layer_rows(tgt, j, b * T_, (b + 1) * T_), caps[static_cast<size_t>(b)].attn_output[l].values.data());
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
    ops().align_loss(loss, backward ? o : Tensor{}, o, layer_rows(tgt, j, 0, R), Tensor{}, static_cast<float>(scale));
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
}

double KdObjective::run(bool backward) {
  const int64_t V = student_->config().vocab_size, K = kd_.top_k;
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(n_counted_, 1));
  std::vector<int32_t> ids(static_cast<size_t>(std::max<int64_t>(K, 1)));
  std::vector<float> values(ids.size());
  const double total = head_pass(backward, [&](int64_t r0, Tensor logits, Tensor dlogits, Tensor loss) {
    const int64_t n = logits.rows();
    for (int64_t i = 0; i < n; ++i) {  // the teacher's rows r0 .. r0 + n
      const int64_t r = r0 + i;
      const float* row = teacher_logits_[static_cast<size_t>(r / T_)].values.data() + (r % T_) * V;
      if (K == 0) {
        ops().upload(chunk_a_.slice_rows(i, i + 1), row);
        continue;
      }
      top_k_row(row, V, K, ids.data(), values.data());
      ops().upload(Tensor{static_cast<float*>(chunk_a_.data) + i * K, Shape{1, K}, DType::F32, ops().device()}, values.data());
      ops().upload(chunk_b_.slice_rows(i, i + 1), ids.data());
    }
    const Tensor mask = counted(r0, n);
    if (K == 0) {
      ops().kl_div(loss, dlogits, logits, chunk_a_.slice_rows(0, n), mask, kd_.temperature, scale);
    } else {
      const Tensor t_logits{chunk_a_.data, Shape{n, K}, DType::F32, ops().device()};
      ops().kl_div_topk(loss, dlogits, logits, chunk_b_.slice_rows(0, n), t_logits, mask, kd_.temperature, scale);
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
  run_teacher(batch, nullptr);
  return run(true);
}

ValidationResult KdObjective::validate(const Batch& batch) {
  read_batch(batch);
  run_teacher(batch, nullptr);
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

LoadedStudent load_student(const RunContext& ctx) {
  ARWKV_ASSERT(ctx.ops != nullptr, "a run context without a backend");
  const std::unique_ptr<StudentCheckpoint> ck = StudentCheckpoint::open(ctx.student_path);
  check_data(ctx, ck->tokenizer_json_path(), ck->config().base.vocab_size);
  return {std::make_unique<Student>(*ck, *ctx.ops), ck->tokenizer_json_path()};
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
    LoadedStudent s = load_student(ctx);
    return std::make_unique<AlignObjective>(std::move(s.model), load_teacher(st, ctx), st.recompute, s.tokenizer_json);
  });
  register_objective("kd", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    LoadedStudent s = load_student(ctx);
    const KdOptions kd{.temperature = static_cast<float>(st.temperature), .top_k = st.top_k,
                       .ce_weight = static_cast<float>(st.ce_weight)};
    return std::make_unique<KdObjective>(std::move(s.model), load_teacher(st, ctx), st.train, kd, st.recompute,
                                         s.tokenizer_json);
  });
  register_objective("sft", [](const StageConfig& st, const RunContext& ctx) -> std::unique_ptr<Objective> {
    LoadedStudent s = load_student(ctx);
    return std::make_unique<SftObjective>(std::move(s.model), st.train, st.recompute, s.tokenizer_json);
  });
}

}  // namespace arwkv
