// The distillation objectives of SPEC §4, registered as the stage kinds "align", "kd" and "sft":
//   align: each student time-mix layer on the frozen teacher's normed input of its layer, trained to
//          reproduce the teacher's attention output: loss = mean over time-mix layers and input
//          tokens of ‖A_teacher − A_student‖²/C. Only time-mix parameters; v_first comes from the
//          student's first time-mix layer on its own teacher input, and its gradient flows back.
//   kd:    the whole student; loss = τ²·KL(p_teacher ‖ p_student) at temperature τ over the full
//          vocabulary, or over the teacher's top k (renormalised), + α·cross-entropy of the next
//          token; mean over counted targets. The teacher may be a larger model sharing the vocabulary.
//   sft:   cross-entropy of the counted targets (assistant tokens: the batch mask) only.
//   dpo:   preference data (rows 2j, 2j+1: the chosen and the rejected reply to one prompt, with the
//          frozen reference's log-probability of every token, Batch::ref): per pair
//          z = β·[(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))],
//          log π(reply) the sum over its counted targets; loss = mean of −log σ(z) over the pairs
//          whose two rows both have a counted target (a reply cut off by seq_len has none). The
//          gradient is each row's cross-entropy gradient scaled by ∓β·σ(−z)/pairs (two passes).
// Counted targets are Batch::target_valid (same document, mask 1): padding and a document's last
// token never count. Packed documents stay apart: the student resets where a document starts, the
// teacher masks attention by document. Validation reports the loss and, for align and kd, the mean
// KL(teacher ‖ student) at τ = 1 and the top-1 agreement of the whole student with the teacher.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/student/student.h"
#include "model/teacher/teacher.h"
#include "train/objective.h"
#include "train/student_backward.h"

namespace arwkv {

struct KdOptions {
  float temperature = 1.0f;
  int64_t top_k = 0;        // 0: the full vocabulary
  float ce_weight = 0.0f;   // α
};

// Rows of logits per chunk of the head: 256, fewer for a vocabulary so large that a chunk of one
// [rows, V] fp32 buffer would pass 64 MiB (Qwen's 151,936: 110 rows); at least 16.
int64_t head_chunk_rows(int64_t vocab);

// What the three objectives share: the student (owned), its backprop, an optional teacher, the
// batch laid out for the device, the head's row chunks, validation against the teacher, saving.
class StudentObjective : public Objective {
 public:
  std::vector<Parameter> parameters() override { return backprop_.parameters(); }
  void zero_grad() override { backprop_.zero_grad(); }
  // config.json + model.safetensors (each tensor in the dtype it is held in: F32, or bf16/f16 for
  // a compact frozen matrix, so later stages start from exactly these weights) and
  // the student's tokenizer.json alongside when it had one, with the files next to it that chat and
  // generate read (tokenizer_config.json, generation_config.json, special_tokens_map.json,
  // chat_template.jinja).
  void save_student(const std::string& dir) override;

  const Student& student() const { return *student_; }
  StudentBackprop& backprop() { return backprop_; }

 protected:
  StudentObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher, const StudentGradOptions& opt,
                   std::string tokenizer_json);

  // Host arrays of a batch: input ids, reset flags, targets, counted flags (B·T each).
  void read_batch(const Batch& batch);
  // Per row, the teacher's final normed hidden states into teacher_hidden_; teacher_logits() makes
  // the logits of a chunk of rows from them, so that the B·T·V logits are never all resident. With
  // on_capture, every layer's attention input and output of each row is handed to it before the
  // next row runs (one row's captures resident at a time). With logits false only the captures.
  using CaptureSink = std::function<void(int64_t row, const TeacherCapture&)>;
  void run_teacher(const Batch& batch, const CaptureSink& on_capture = {}, bool logits = true);
  // The teacher's logits [n, V] of batch rows r0 .. r0 + n (n ≤ the head's chunk), on the device,
  // in chunk_a_ (valid until chunk_a_ is written again).
  Tensor teacher_logits(int64_t r0, int64_t n);
  // KL(teacher ‖ student) at τ = 1 and top-1 agreement over counted targets, from Student::forward.
  void agreement(const Batch& batch, ValidationResult& out);
  // The whole student over the batch, then the head in row chunks: chunk(r0, logits [n, V],
  // dlogits [n, V] or empty, loss [n]) writes per-row losses (and their gradients). Returns the sum
  // of the losses; with backward, back-propagates into the parameters.
  using ChunkLoss = std::function<void(int64_t, Tensor, Tensor, Tensor)>;
  double head_pass(bool backward, const ChunkLoss& chunk);
  // Device views of rows [r0, r0 + n) of the batch's targets and counted flags (I32).
  Tensor targets(int64_t r0, int64_t n) const { return targets_dev_.slice_rows(r0, r0 + n); }
  Tensor counted(int64_t r0, int64_t n) const { return counted_dev_.slice_rows(r0, r0 + n); }
  double sum_of(Tensor loss);  // downloads a loss vector and sums it in double

  std::unique_ptr<Student> student_;
  std::unique_ptr<Teacher> teacher_;
  StudentBackprop backprop_;
  std::string tokenizer_json_;
  int64_t B_ = 0, T_ = 0, n_counted_ = 0;
  std::vector<int32_t> ids_, resets_, targets_, counted_;
  HostTensor teacher_hidden_;                // [B·T, C]
  Buffer io_;                                // device: targets, counted flags, the head's chunks
  Tensor targets_dev_, counted_dev_, logits_, dlogits_, dlogits2_, loss_, loss2_, chunk_a_, chunk_b_, hidden_;
  int64_t io_rows_ = 0;
  int64_t top_k_ = 0;  // columns of chunk_b_ (kd with a top-k teacher)
  bool head_buffers_ = true, second_loss_ = false;  // size_io: logits_, dlogits_, loss_; dlogits2_, loss2_

 private:
  void size_io();
};

class AlignObjective final : public StudentObjective {
 public:
  AlignObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher, bool recompute,
                 std::string tokenizer_json = "");
  double forward_backward(const Batch& batch) override;
  ValidationResult validate(const Batch& batch) override;
  int64_t count(const Batch& batch) const override { return batch.B * batch.T; }  // every input token

  // Output calibration of a student (calibrate.h): accumulate adds a batch's least-squares normal
  // equations for per-head scales of each time-mix layer's output projection; apply solves them,
  // scales the projections' head columns, and returns per-layer mean ‖A_teacher − A_student‖²/C
  // before, after and with the block silent (all over the accumulated batches).
  void accumulate_calibration(const Batch& batch);
  struct Calibration {
    std::vector<int> layers;
    std::vector<double> before, after, silent;  // per time-mix layer
    std::vector<std::vector<double>> scales;    // per time-mix layer, per head
  };
  Calibration apply_calibration();

 private:
  // Teacher captures into inputs_/targets_all_, every time-mix layer's output into outputs_; the
  // teacher's logits too when validation needs them.
  void forward_layers(const Batch& batch, bool teacher_logits);
  double run(const Batch& batch, bool backward);
  struct NormalEquations {
    std::vector<double> G, b;  // [H, H], [H]: Σ u_h·u_h', Σ u_h·A
    double aa = 0, err = 0;    // Σ ‖A‖², Σ ‖A − O‖²
    int64_t rows = 0;
  };
  std::vector<NormalEquations> normal_;
  Buffer layer_io_;
  Tensor inputs_, outputs_, targets_all_, layer_loss_;  // [Lw, R, C] ×3, [R]
  // Families with a norm after attention: the loss compares the normed outputs (what reaches the
  // residual stream; the norm makes the raw output's scale irrelevant). normed_ holds one layer's
  // normed output and then its gradient, dout_ the gradient of the raw output. [R, C] each.
  Tensor normed_, dout_;
};

class KdObjective final : public StudentObjective {
 public:
  // groups: the trainable parameter groups. The teacher's vocabulary must be the student's.
  KdObjective(std::unique_ptr<Student> student, std::unique_ptr<Teacher> teacher, const std::vector<std::string>& groups,
              const KdOptions& kd, bool recompute, std::string tokenizer_json = "");
  double forward_backward(const Batch& batch) override;
  ValidationResult validate(const Batch& batch) override;

 private:
  double run(bool backward);
  KdOptions kd_;
};

class SftObjective final : public StudentObjective {
 public:
  SftObjective(std::unique_ptr<Student> student, const std::vector<std::string>& groups, bool recompute,
               std::string tokenizer_json = "");
  double forward_backward(const Batch& batch) override;
  ValidationResult validate(const Batch& batch) override;
};

class DpoObjective final : public StudentObjective {
 public:
  DpoObjective(std::unique_ptr<Student> student, const std::vector<std::string>& groups, double beta, bool recompute,
               std::string tokenizer_json = "");
  double forward_backward(const Batch& batch) override;
  ValidationResult validate(const Batch& batch) override;
  int64_t count(const Batch& batch) const override;  // pairs that count
  int64_t row_group() const override { return 2; }

 private:
  static bool row_counts(const Batch& batch, int64_t b);
  // Reads the batch and runs the student once: per pair the margin z (beta_ applied) into z_.
  // Returns the mean loss.
  double margins(const Batch& batch);
  double beta_;
  std::vector<double> z_;     // per pair
  std::vector<uint8_t> live_;  // per pair: both rows have a counted target
  int64_t pairs_ = 0;          // live pairs
};

// Registers "align", "kd", "sft" and "dpo": each loads the stage's student (RunContext::student_path) and,
// for align and kd, the teacher ([run] teacher, or the stage's kd_teacher) on the context's backend.
void register_student_objectives();

}  // namespace arwkv
