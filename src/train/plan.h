// Memory plan of a distillation stage (`arwkv plan`): what one process (one rank) holds, by component, for a
// teacher, a student, a stage kind, the trained groups, batch × seq_len, recompute and the dtype of
// the student's frozen matrices, computed from the shapes alone (no weights are read). It follows
// how this program allocates: the same buffers the Student, Teacher, StudentBackprop, the objectives
// and AdamW make, so a change there must change this too (tests/model/test_plan.cpp compares the
// two on the tiny fixtures; docs/memory.md compares the plan with measured peaks).
//
// Phases, each a sum of components; the peak is the largest:
//   load        the student's file mapped while its weights are copied, then the teacher's;
//   step        weights, gradients, AdamW moments, the activation arena, the head's chunks and the
//               teacher's pass (align: every layer's captured input and output);
//   validation  the step's resident part plus one row's whole-sequence logits, student and teacher;
//   checkpoint  the resident part plus the largest tensor being written (host copy and bytes).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/student/student_config.h"

namespace arwkv {

class Checkpoint;

struct PlanInput {
  std::string stage = "stage";
  std::string kind = "align";             // align | kd | sft | dpo
  std::vector<std::string> train = {"time_mix"};
  int64_t batch = 1, seq_len = 512;
  bool recompute = false;
  std::string frozen_dtype = "stored";    // stored | f32 | bf16 | f16
  StudentConfig student;
  // The dtype each student tensor is stored in (name → dtype; missing names: F32).
  std::map<std::string, DType> student_stored;
  uint64_t student_file_bytes = 0;        // the student's weights file(s), mapped while loading
  // The teacher (align, kd): its shapes and the bytes its tensors are held in (compact as stored).
  std::optional<ModelConfig> teacher;
  uint64_t teacher_weight_bytes = 0, teacher_file_bytes = 0;
  int64_t top_k = 0;                       // kd
  double ce_weight = 0.0;                  // kd
  // Data parallel: the plan is one rank's of `ranks` (mpirun -np), each with its share of the
  // batch's rows; with zero ≥ 1 the AdamW moments are split across the ranks.
  int ranks = 1;
  int zero = 1;
};

struct PlanItem {
  std::string component;
  uint64_t bytes = 0;
  std::string note;
};

struct MemoryPlan {
  std::vector<PlanItem> items;             // by component
  std::map<std::string, uint64_t> phases;  // load, step, validation, checkpoint
  uint64_t peak = 0;
  std::string peak_phase;
  uint64_t trained_parameters = 0;
};

// Throws arwkv::Error for an unknown kind, group or frozen dtype.
MemoryPlan plan_stage(const PlanInput& in);

// The bytes StudentBackprop's activation arena takes for a pass of B rows of T tokens (what
// StudentBackprop::arena_bytes() reports once sized).
uint64_t student_arena_bytes(const StudentConfig& cfg, int64_t B, int64_t T, const std::vector<std::string>& groups,
                             bool recompute, bool align);

// The bytes a Teacher holds its weights in (Teacher::weight_bytes()): from a checkpoint, its
// matrices compact as stored; without one (ck null), every matrix of `cfg` as `dtype`.
uint64_t teacher_held_bytes(const ModelConfig& cfg, const Checkpoint* ck, DType dtype);

// Public shapes of the models the README's table covers ("qwen2.5-0.5b", "qwen2.5-1.5b",
// "qwen2.5-7b", "qwen2.5-32b", "smollm2-135m"); throws for another name.
ModelConfig known_shape(const std::string& name);
std::vector<std::string> known_shape_names();

}  // namespace arwkv
