// Output calibration of a converted student (`arwkv convert --calibrate DATA`).
//
// A transfer-initialised time-mix block is loud: RWKV-7 sums v·kᵀ over the context without
// softmax's normalisation, so its outputs are many times the attention outputs it replaces and the
// untransformed student starts far from its teacher (perplexity ~10⁸ on SmolLM2). Calibration runs
// the teacher and every time-mix block (on the teacher's own layer inputs, as align does) over a
// few batches of training data and, per layer, finds the scales α_h of each head's columns of the
// output projection that minimise
//     Σ_tokens ‖A_teacher − Σ_h α_h·Wo[:, head h]·y_h‖²       (least squares, a tiny ridge)
// where y_h is head h's part of what the projection reads. α = 0 is the block silenced, so on the
// calibration tokens each calibrated block is at least as close to its attention as silence is;
// whatever part of the attention output the transferred block already tracks is kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace arwkv {

struct CalibrateOptions {
  std::string student;  // the student directory, rewritten in place (atomically)
  std::string teacher;  // the teacher it was converted from
  std::string data;     // tokenized data (`arwkv data`); its train split is read
  int64_t tokens = 8192;
  int64_t seq_len = 512;
  uint64_t seed = 0;
  std::string backend = "cpu";
};

struct CalibrateReport {
  int64_t tokens = 0;
  std::vector<int> layers;
  std::vector<double> before, after, silent;  // per time-mix layer: mean ‖A_teacher − A_student‖²/C
  std::vector<std::vector<double>> scales;    // per time-mix layer, per head
};

// Throws arwkv::Error naming the file for a student, teacher or data problem (the student
// directory is then left as it was).
CalibrateReport calibrate_student(const CalibrateOptions& options);

}  // namespace arwkv
