// The student's hand-written backward pass (SPEC §3, §4): a training forward over B rows of T
// tokens that keeps what the backward needs, and the backward through the head, the final norm,
// the MLPs, the time-mix blocks (LoRAs, token shift, prepare, WKV-7, output, r/k/v/o) and the
// embedding, accumulating into the gradients of the trainable parameters. No autograd: each step of
// Student's forward has its backward here, in reverse order, over the Ops backward passes.
//
// Rows: every row b of a pass starts from a zero state; resets [B, T] mark where a document starts
// inside a row (S and x_prev restart from zero there; a kept attention layer attends only within
// the document). Activations live in one arena sized for the largest B·T seen. In recompute mode
// only each layer's input is kept and a layer's internals are recomputed just before its backward
// (the same code on the same inputs, so the gradients are identical).
//
// Hybrid (kept attention) layers are frozen: they run forward, but their attention has no backward
// here, so a trainable tensor below one (or in one, besides its MLP) is refused at construction.
//
// Parameters: value views into the Student's weights (LoRA matrices transposed to [out, in],
// [1, 1, C] vectors flat, x_* rows of the stacked mixes, as student_parts.h holds them), gradient
// views of one buffer with the same shapes, named as in student_tensor_list. A tied head and
// embedding are one parameter, trained when either group is chosen (named model.embed_tokens.weight,
// in the group "head" when the head trains, else "embedding").
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/student/student.h"
#include "model/student/student_parts.h"
#include "train/objective.h"

namespace arwkv {

struct StudentGradOptions {
  std::vector<std::string> groups;  // the trainable parameter groups (kParameterGroups)
  bool recompute = false;
  // Align: time-mix layers run on their own (time_mix_forward/backward), nothing flows between
  // layers, so frozen hybrid layers cut nothing off.
  bool align = false;
};

// Where one tensor of student_tensor_list lives in a Student: its weight view (the layout above),
// parameter group, whether weight decay applies (matrices), the layer (−1 outside the layers), its
// depth (−1 embedding, L final norm, L + 1 untied head), and for LoRA matrices that the view is
// the transpose of the stored [in, out] matrix. Throws arwkv::Error for a name the student lacks.
struct StudentWeight {
  Tensor value;
  std::string group;
  bool decay = false, lora = false;
  int64_t layer = -1, level = 0, plane = -1;  // plane: the row of the stacked mixes (x_*)
  Tensor Student::Layer::* field = nullptr;
};
StudentWeight describe_student_weight(const Student& student, const std::string& name);
// Whether the tensor `name` of student_tensor_list(cfg) is a parameter when `groups` train (a tied
// embedding trains with "embedding" or "head"); what StudentBackprop will train, before a Student exists.
bool student_tensor_trains(const StudentConfig& cfg, const std::string& name, const std::vector<std::string>& groups);

class StudentBackprop {
 public:
  // Throws arwkv::Error for an unknown group, or for trainable tensors the frozen hybrid layers
  // would cut off from the loss.
  StudentBackprop(const Student& student, const StudentGradOptions& opt);
  ~StudentBackprop();
  StudentBackprop(const StudentBackprop&) = delete;
  StudentBackprop& operator=(const StudentBackprop&) = delete;

  const Student& student() const { return *student_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  void zero_grad();

  // Starts a pass over B rows of T tokens. resets: B·T flags (non-zero: a document starts at that
  // token). Sizes the arena when B·T grows; clears the gradient of v_first.
  void begin(int64_t B, int64_t T, std::span<const int32_t> resets);
  int64_t rows() const { return B_ * T_; }
  size_t arena_bytes() const { return arena_.size(); }  // the activation arena, as sized so far

  // The whole student on ids [B·T]: embedding, every layer, final norm (keeps the activations).
  void forward(std::span<const int32_t> ids);
  // logits [n, V] of rows row0 .. row0 + n after forward().
  void head_forward(Tensor logits, int64_t row0);
  // dlogits [n, V] of the same rows: the head's gradient and that of the normed hidden state.
  // Every row's gradient must be given once (zeros for rows without loss) before backward().
  void head_backward(Tensor dlogits, int64_t row0);
  // From the final norm down to the embedding, as deep as a trainable tensor lies.
  void backward();

  // Align: one time-mix layer on its own, o [B·T, C] = TimeMix(xn [B·T, C]). The first time-mix
  // layer runs first (it makes v_first), the others in any order; xn must stay valid (and
  // unchanged) until that layer's backward. time_mix_backward: dout [B·T, C] of o; every later
  // time-mix layer before the first one (whose v receives v_first's gradient).
  void time_mix_forward(int64_t layer, Tensor xn, Tensor out);
  void time_mix_backward(int64_t layer, Tensor dout);
  // After time_mix_forward (not in recompute mode): what the layer's output projection reads,
  // y [B·T, C] = (WKV-7 output, bonus, gate), so that out = y·Woᵀ.
  Tensor time_mix_output_input(int64_t layer);

  struct Acts;
  struct Scratch;

 private:
  using Layer = Student::Layer;
  void setup_parameters(const StudentGradOptions& opt);
  void check_reachable();
  void carve(char* base, size_t* bytes);
  Acts& acts_for(int64_t layer);
  void layer_forward(int64_t l);
  void layer_backward(int64_t l);
  void tm_forward(const Layer& w, Acts& a, Tensor xn, Tensor out);
  void tm_backward(const Layer& w, const Layer& g, Acts& a, Tensor xn, Tensor dout, Tensor dxn);
  void lora_backward(Tensor dx, Tensor dfirst, Tensor dsecond, Tensor dbias, Tensor dout, Tensor hidden,
                     Tensor x, Tensor first, Tensor second, void (Ops::*activation_backward)(Tensor, Tensor, Tensor));
  void attention_forward(int64_t layer, Tensor xn, Tensor out);
  void mlp_forward(const Layer& w, Acts& a, Tensor x_mid, Tensor x_out);
  void mlp_backward(const Layer& w, const Layer& g, Acts& a, Tensor x_mid, Tensor dx);

  const Student* student_;
  Ops* ops_;
  StudentConfig cfg_;
  bool recompute_ = false, align_ = false;
  int n_planes_ = 6;
  int64_t max_rank_ = 1;
  int64_t lowest_ = 0;  // the lowest layer a gradient must reach (−1: the embedding)

  Buffer grad_buffer_;
  std::vector<Parameter> params_;
  std::vector<Layer> grads_;  // per layer: gradient views (empty where not trained)
  Tensor d_embed_, d_final_norm_, d_head_;

  Buffer arena_;
  int64_t capacity_ = 0, B_ = 0, T_ = 0;
  std::unique_ptr<Scratch> s_;
  std::vector<Acts> acts_;
  std::vector<Tensor> align_inputs_;  // align: each layer's xn, for recomputation
  std::vector<int32_t> resets_;
  bool any_reset_ = false;
};

}  // namespace arwkv
