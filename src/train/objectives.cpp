// StudentObjective's shared parts (batch layout, teacher runs, the head in chunks, agreement,
// saving) and the three objectives align, kd and sft.
#include "train/objectives.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "model/student/student_checkpoint.h"

namespace arwkv {
namespace {


std::vector<int32_t> row_doc_ids(const Batch& batch, int64_t b) {  // small per-row ids for the models
  std::vector<int32_t> out(static_cast<size_t>(batch.T));
  int32_t id = 0;
  for (int64_t t = 0; t < batch.T; ++t) {
    if (t > 0 && batch.doc_ids[batch.at(b, t)] != batch.doc_ids[batch.at(b, t - 1)]) ++id;
    out[static_cast<size_t>(t)] = id;
  }
  return out;
}

// KL(p ‖ q) and whether the argmaxes agree, for one row of teacher and student logits, in double.
std::pair<double, bool> row_agreement(const float* teacher, const float* student, int64_t V) {
  auto log_softmax = [V](const float* z, std::vector<double>& out) {
    const double m = *std::max_element(z, z + V);
    double s = 0.0;
    for (int64_t i = 0; i < V; ++i) s += std::exp(z[i] - m);
    const double lse = m + std::log(s);
    out.resize(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) out[static_cast<size_t>(i)] = z[i] - lse;
  };
  std::vector<double> lt, ls;
  log_softmax(teacher, lt);
  log_softmax(student, ls);
  double kl = 0.0;
  for (size_t i = 0; i < lt.size(); ++i) kl += std::exp(lt[i]) * (lt[i] - ls[i]);
  const bool same = std::max_element(teacher, teacher + V) - teacher == std::max_element(student, student + V) - student;
  return {kl, same};
}

}  // namespace

int64_t head_chunk_rows(int64_t vocab) {
  constexpr int64_t kChunkBytes = int64_t{64} << 20, kMaxRows = 256, kMinRows = 16;
  return std::clamp(kChunkBytes / (4 * std::max<int64_t>(vocab, 1)), kMinRows, kMaxRows);
}

StudentObjective::StudentObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher,
                                   const StudentGradOptions& opt, std::string tokenizer_json)
    : Objective(student->ops()), student_(std::move(student)), teacher_(std::move(teacher)),
      backprop_(*student_, opt), tokenizer_json_(std::move(tokenizer_json)) {}

void StudentObjective::read_batch(const Batch& batch) {
  B_ = batch.B, T_ = batch.T;
  const size_t R = static_cast<size_t>(B_ * T_);
  ids_.resize(R), resets_.resize(R), targets_.resize(R), counted_.resize(R);
  n_counted_ = 0;
  for (int64_t b = 0; b < B_; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      const size_t i = static_cast<size_t>(b * T_ + t);
      ids_[i] = batch.input(b, t);
      targets_[i] = batch.target(b, t);
      resets_[i] = t > 0 && batch.doc_ids[batch.at(b, t)] != batch.doc_ids[batch.at(b, t - 1)];
      counted_[i] = batch.target_valid(b, t) ? 1 : 0;
      n_counted_ += counted_[i];
    }
  size_io();
  ops().upload(targets_dev_.slice_rows(0, B_ * T_), targets_.data());
  ops().upload(counted_dev_.slice_rows(0, B_ * T_), counted_.data());
}

// Device memory for a batch's targets and flags and for one chunk of the head, grown as needed.
void StudentObjective::size_io() {
  const int64_t R = B_ * T_, V = student_->config().vocab_size;
  if (R <= io_rows_) return;
  const int64_t n = std::min(R, head_chunk_rows(V)), K = std::max<int64_t>(top_k_, 1);
  const int64_t C = teacher_ ? teacher_->config().hidden_size : 1;
  // Only what this objective reads: the head's logits and gradients (not align), a second loss
  // (kd with cross-entropy), the teacher's chunk and hidden states (align and kd).
  const int64_t h = head_buffers_ ? n : 0, h2 = second_loss_ ? n : 0, t = teacher_ ? n : 0;
  const Shape shapes[] = {{R}, {R}, {h, V}, {h, V}, {h2, V}, {h}, {h2}, {t, V}, {t, K}, {t, C}};
  size_t total = 0;
  for (const Shape& s : shapes) total += (static_cast<size_t>(s.numel()) * 4 + 63) / 64 * 64;
  io_ = ops().alloc(total);
  char* p = static_cast<char*>(io_.data());
  auto take = [&](const Shape& s, DType dt) {
    Tensor t{p, s, dt, ops().device()};
    p += (static_cast<size_t>(s.numel()) * 4 + 63) / 64 * 64;
    return t;
  };
  targets_dev_ = take(shapes[0], DType::I32);
  counted_dev_ = take(shapes[1], DType::I32);
  logits_ = take(shapes[2], DType::F32);
  dlogits_ = take(shapes[3], DType::F32);
  dlogits2_ = take(shapes[4], DType::F32);
  loss_ = take(shapes[5], DType::F32);
  loss2_ = take(shapes[6], DType::F32);
  chunk_a_ = take(shapes[7], DType::F32);
  chunk_b_ = take(shapes[8], DType::I32);
  hidden_ = take(shapes[9], DType::F32);
  io_rows_ = R;
}

void StudentObjective::run_teacher(const Batch& batch, const CaptureSink& on_capture, bool logits) {
  ARWKV_ASSERT(teacher_ != nullptr, "this objective has no teacher");
  ARWKV_ASSERT(logits || on_capture, "a teacher pass with neither logits nor captures");
  const int64_t C = teacher_->config().hidden_size;
  teacher_hidden_ = logits ? HostTensor(Shape{batch.B * batch.T, C}) : HostTensor();
  for (int64_t b = 0; b < batch.B; ++b) {
    const std::vector<int32_t> docs = row_doc_ids(batch, b);
    const std::span<const int32_t> ids(ids_.data() + b * batch.T, static_cast<size_t>(batch.T));
    TeacherCapture cap;
    if (logits) {
      const HostTensor h = teacher_->final_hidden(ids, docs, on_capture ? &cap : nullptr);
      std::copy(h.values.begin(), h.values.end(), teacher_hidden_.values.begin() + b * batch.T * C);
    } else {
      teacher_->capture_layers(ids, docs, cap);
    }
    if (on_capture) on_capture(b, cap);
  }
}

Tensor StudentObjective::teacher_logits(int64_t r0, int64_t n) {
  ARWKV_ASSERT(teacher_hidden_.shape.ndim == 2 && r0 + n <= teacher_hidden_.shape[0] && n <= chunk_a_.rows(),
               "teacher logits of rows the teacher has not run");
  const int64_t C = teacher_hidden_.shape[1];
  const Tensor hidden = hidden_.slice_rows(0, n), logits = chunk_a_.slice_rows(0, n);
  ops().upload(hidden, teacher_hidden_.values.data() + r0 * C);
  teacher_->head_rows(logits, hidden);
  return logits;
}

void StudentObjective::agreement(const Batch& batch, ValidationResult& out) {
  const int64_t V = student_->config().vocab_size;
  double kl = 0.0;
  int64_t same = 0;
  std::vector<float> teacher;
  for (int64_t b = 0; b < batch.B; ++b) {  // the inference forward, a chunk of the head at a time
    const std::vector<int32_t> docs = row_doc_ids(batch, b);
    const std::span<const int32_t> ids(ids_.data() + b * batch.T, static_cast<size_t>(batch.T));
    student_->forward_chunks(ids, docs, chunk_a_.rows(), [&](int64_t t0, const HostTensor& logits) {
      const int64_t n = logits.shape[0];
      teacher.resize(static_cast<size_t>(n * V));
      ops().download(teacher.data(), teacher_logits(b * batch.T + t0, n));
      for (int64_t t = t0; t < t0 + n; ++t) {
        if (!counted_[static_cast<size_t>(b * batch.T + t)]) continue;
        const auto [k, s] = row_agreement(teacher.data() + (t - t0) * V, logits.values.data() + (t - t0) * V, V);
        kl += k;
        same += s ? 1 : 0;
      }
    });
  }
  const double n = static_cast<double>(std::max<int64_t>(n_counted_, 1));
  out.kl = kl / n;
  out.top1 = static_cast<double>(same) / n;
}

double StudentObjective::sum_of(Tensor loss) {
  std::vector<float> v(static_cast<size_t>(loss.numel()));
  ops().download(v.data(), loss);
  return std::accumulate(v.begin(), v.end(), 0.0);
}

double StudentObjective::head_pass(bool backward, const ChunkLoss& chunk) {
  StudentBackprop& bp = backprop_;
  bp.begin(B_, T_, resets_);
  bp.forward(ids_);
  double total = 0.0;
  const int64_t rows = head_chunk_rows(student_->config().vocab_size);
  for (int64_t r0 = 0; r0 < B_ * T_; r0 += rows) {
    const int64_t n = std::min(rows, B_ * T_ - r0);
    const Tensor logits = logits_.slice_rows(0, n), dlogits = dlogits_.slice_rows(0, n), loss = loss_.slice_rows(0, n);
    bp.head_forward(logits, r0);
    chunk(r0, logits, backward ? dlogits : Tensor{}, loss);
    total += sum_of(loss);
    if (backward) bp.head_backward(dlogits, r0);
  }
  if (backward) bp.backward();
  return total;
}

void StudentObjective::save_student(const std::string& dir) {
  const Student& s = *student_;
  auto held = [&](const TensorSpec& spec) { return describe_student_weight(s, spec.name).value.dtype; };
  write_student_checkpoint(dir, s.student_config(), [&](const TensorSpec& spec) {
    const StudentWeight w = describe_student_weight(s, spec.name);
    HostTensor host = s.weight_to_host(w.value);
    if (w.lora) {  // the view is [out, in]; stored as [in, out]
      const int64_t R = w.value.dim(0), C = w.value.dim(1);
      HostTensor t(Shape{C, R});
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) t.values[static_cast<size_t>(c * R + r)] = host.values[static_cast<size_t>(r * C + c)];
      host = std::move(t);
    }
    host.shape = spec.shape;
    return host;
  }, DType::F32, held, [&](const TensorSpec& spec, std::vector<uint8_t>& bytes) {  // a compact frozen matrix, as held
    const Tensor w = describe_student_weight(s, spec.name).value;
    bytes.resize(static_cast<size_t>(w.numel()) * 2);
    ops().download(bytes.data(), w);
  });
  if (tokenizer_json_.empty()) return;
  // The tokenizer's siblings too: the chat template and the stop tokens that chat and generate use.
  namespace fs = std::filesystem;
  const fs::path src = fs::path(tokenizer_json_).parent_path();
  fs::copy_file(tokenizer_json_, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
  for (const char* name : {"tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
                           "chat_template.jinja"})
    if (fs::exists(src / name)) fs::copy_file(src / name, fs::path(dir) / name, fs::copy_options::overwrite_existing);
}

}  // namespace arwkv
