#include "eval/compare.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace arwkv {

double EvalResult::perplexity() const { return std::exp(nll); }
double EvalResult::teacher_perplexity() const { return std::exp(teacher_nll); }

void log_softmax(const float* logits, int64_t V, double* out) {
  double mx = -INFINITY;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(logits[v] - mx);
  const double lse = mx + std::log(sum);
  for (int64_t v = 0; v < V; ++v) out[v] = logits[v] - lse;
}

double kl_divergence(const double* logp, const double* logq, int64_t V) {
  double kl = 0.0;
  for (int64_t v = 0; v < V; ++v) kl += std::exp(logp[v]) * (logp[v] - logq[v]);
  return kl;
}

namespace {

int64_t argmax_row(const double* row, int64_t V) { return std::max_element(row, row + V) - row; }

// Windows [begin, end) over ids, each of at least two tokens.
std::vector<std::pair<int64_t, int64_t>> windows(std::span<const int32_t> ids, const EvalOptions& opt) {
  if (opt.window < 2) fail("evaluation window must be at least 2 tokens, got {}", opt.window);
  int64_t n = static_cast<int64_t>(ids.size());
  std::vector<std::pair<int64_t, int64_t>> w;
  if (opt.spread && opt.max_tokens > 0) {
    const int64_t available = n / opt.window, wanted = (opt.max_tokens + opt.window - 2) / (opt.window - 1);
    if (available >= wanted && wanted > 0) {
      for (int64_t i = 0; i < wanted; ++i) {
        const int64_t b = i * available / wanted * opt.window;
        w.emplace_back(b, b + opt.window);
      }
      return w;
    }
  }
  if (opt.max_tokens > 0) n = std::min(n, opt.max_tokens + 1);
  for (int64_t b = 0; b + 1 < n; b += opt.window) w.emplace_back(b, std::min(n, b + opt.window));
  if (w.empty()) fail("evaluation needs at least 2 tokens of text, got {}", n);
  return w;
}

// A window's tokens as the models read them: BOS in front where opt asks and it is not there; the
// predictions scored are those of the window's own tokens after its first.
struct WindowIds {
  std::vector<int32_t> ids;
  int64_t off = 0;  // 1 when BOS was put in front
};
WindowIds window_ids(std::span<const int32_t> seq, const EvalOptions& opt) {
  WindowIds w;
  if (opt.bos >= 0 && seq.front() != opt.bos) w.ids.push_back(opt.bos), w.off = 1;
  w.ids.insert(w.ids.end(), seq.begin(), seq.end());
  return w;
}

int64_t scored(const std::vector<std::pair<int64_t, int64_t>>& w) {
  int64_t n = 0;
  for (auto [b, e] : w) n += e - b - 1;
  return n;
}

// Per-token scores of one window, bucketed by the tokens of context afterwards (t + 1 for the
// prediction at t), so that the sums do not depend on the threads.
struct PositionSums {
  std::vector<double> nll, teacher_nll, kl;  // per prediction of the window
  void resize(int64_t n) {
    nll.assign(static_cast<size_t>(n), 0.0);
    teacher_nll.assign(static_cast<size_t>(n), 0.0);
    kl.assign(static_cast<size_t>(n), 0.0);
  }
};

void add_to_buckets(const PositionSums& w, std::vector<PositionBucket>& buckets) {
  for (size_t t = 0; t < w.nll.size(); ++t) {
    const auto i = static_cast<size_t>(std::bit_width(t + 1) - 1);
    while (buckets.size() <= i) {
      const int64_t first = int64_t{1} << buckets.size();
      buckets.push_back(PositionBucket{first, 2 * first - 1});
    }
    PositionBucket& b = buckets[i];
    ++b.tokens;
    b.nll += w.nll[t];
    b.teacher_nll += w.teacher_nll[t];
    b.kl += w.kl[t];
  }
}

void finish_buckets(std::vector<PositionBucket>& buckets) {
  for (PositionBucket& b : buckets) {
    const double n = static_cast<double>(std::max<int64_t>(b.tokens, 1));
    b.nll /= n;
    b.teacher_nll /= n;
    b.kl /= n;
  }
}

}  // namespace

EvalResult evaluate(const LanguageModel& model, std::span<const int32_t> ids, const EvalOptions& opt) {
  auto wins = windows(ids, opt);
  const int64_t total = scored(wins);
  EvalResult r;
  double nll = 0.0;
  PositionSums w;
  for (auto [b, e] : wins) {
    auto seq = ids.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b));
    const WindowIds in = window_ids(seq, opt);
    HostTensor logits = model.logits(in.ids);
    const int64_t V = logits.shape[1];
    w.resize(e - b - 1);
#pragma omp parallel reduction(+ : nll)
    {
      std::vector<double> logp(static_cast<size_t>(V));
#pragma omp for
      for (int64_t t = 0; t < e - b - 1; ++t) {
        log_softmax(logits.values.data() + (t + in.off) * V, V, logp.data());
        const double l = -logp[static_cast<size_t>(seq[static_cast<size_t>(t + 1)])];
        nll += l;
        w.nll[static_cast<size_t>(t)] = l;
      }
    }
    add_to_buckets(w, r.by_position);
    r.tokens += e - b - 1;
    if (opt.progress) opt.progress(r.tokens, total);
  }
  r.nll = nll / static_cast<double>(r.tokens);
  finish_buckets(r.by_position);
  return r;
}

EvalResult compare(const LanguageModel& teacher, const LanguageModel& student, std::span<const int32_t> ids,
                   const EvalOptions& opt) {
  if (teacher.config().vocab_size != student.config().vocab_size)
    fail("teacher and student vocabularies differ ({} vs {} tokens)", teacher.config().vocab_size,
         student.config().vocab_size);
  auto wins = windows(ids, opt);
  const int64_t total = scored(wins);
  EvalResult r;
  double nll_s = 0.0, nll_t = 0.0, kl = 0.0;
  int64_t agree = 0;
  PositionSums w;
  for (auto [b, e] : wins) {
    auto seq = ids.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b));
    const WindowIds in = window_ids(seq, opt);
    HostTensor lt = teacher.logits(in.ids), ls = student.logits(in.ids);
    const int64_t V = lt.shape[1];
    w.resize(e - b - 1);
#pragma omp parallel reduction(+ : nll_s, nll_t, kl, agree)
    {
      std::vector<double> logp(static_cast<size_t>(V)), logq(static_cast<size_t>(V));
#pragma omp for
      for (int64_t t = 0; t < e - b - 1; ++t) {
        log_softmax(lt.values.data() + (t + in.off) * V, V, logp.data());
        log_softmax(ls.values.data() + (t + in.off) * V, V, logq.data());
        const auto next = static_cast<size_t>(seq[static_cast<size_t>(t + 1)]);
        const auto i = static_cast<size_t>(t);
        nll_t += w.teacher_nll[i] = -logp[next];
        nll_s += w.nll[i] = -logq[next];
        kl += w.kl[i] = kl_divergence(logp.data(), logq.data(), V);
        agree += argmax_row(logp.data(), V) == argmax_row(logq.data(), V);
      }
    }
    add_to_buckets(w, r.by_position);
    r.tokens += e - b - 1;
    if (opt.progress) opt.progress(r.tokens, total);
  }
  const double n = static_cast<double>(r.tokens);
  r.nll = nll_s / n;
  r.teacher_nll = nll_t / n;
  r.mean_kl = kl / n;
  r.top1_agreement = static_cast<double>(agree) / n;
  finish_buckets(r.by_position);
  return r;
}

}  // namespace arwkv
