// Held-out text metrics (SPEC §6): perplexity of a model, and agreement of a student with its
// teacher — mean KL(teacher ‖ student) and top-1 match rate per token. Text is cut into windows
// that each run as a fresh sequence; the first token of a window is context only.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/language_model.h"

namespace arwkv {

struct EvalOptions {
  int64_t window = 512;       // tokens per sequence
  int64_t max_tokens = 0;     // 0: all of the text
  // With max_tokens: the windows are spread evenly over the whole text instead of taken from its
  // start (as many whole windows as max_tokens needs), so that a sample of a long file of many
  // sources is not one source.
  bool spread = false;
  // Where the tokenizer starts every sequence with BOS (Gemma): a window that does not begin with
  // it gets it in front, as context only (a window in mid-document would otherwise be a sequence
  // without its BOS, which such a model never saw in training). -1: none.
  int32_t bos = -1;
  // Called after each window with the tokens scored so far and the total to score.
  std::function<void(int64_t done, int64_t total)> progress;
};

// Scores of the predictions made with between first and last tokens of context (inclusive) in
// their window: buckets [1], [2, 3], [4, 7], ... — what more context is worth to each model.
struct PositionBucket {
  int64_t first = 0, last = 0;
  int64_t tokens = 0;        // predictions in the bucket
  double nll = 0.0;          // mean, model or student
  double teacher_nll = 0.0;  // compare only
  double kl = 0.0;           // compare only
};

struct EvalResult {
  int64_t tokens = 0;           // predictions scored
  double nll = 0.0;             // mean next-token negative log-likelihood (nats), model or student
  double teacher_nll = 0.0;     // the same for the teacher (compare only)
  double mean_kl = 0.0;         // mean KL(teacher ‖ student) in nats (compare only)
  double top1_agreement = 0.0;  // fraction of tokens where both argmaxes agree (compare only)
  std::vector<PositionBucket> by_position;  // every bucket the window reaches, in order

  double perplexity() const;
  double teacher_perplexity() const;
};

EvalResult evaluate(const LanguageModel& model, std::span<const int32_t> ids, const EvalOptions& opt);
EvalResult compare(const LanguageModel& teacher, const LanguageModel& student, std::span<const int32_t> ids,
                   const EvalOptions& opt);

// Per-token pieces, in double: log-softmax of a row, and KL(p ‖ q) from two log-softmaxed rows.
void log_softmax(const float* logits, int64_t V, double* out);
double kl_divergence(const double* logp, const double* logq, int64_t V);

}  // namespace arwkv
