// Output calibration (calibrate.h): AlignObjective's normal equations and the in-place rewrite of
// a student directory.
#include "train/calibrate.h"

#include <cmath>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "data/dataset.h"
#include "train/config.h"
#include "train/objectives.h"

namespace arwkv {
namespace {

// Solves (G + λ·I)·x = b for a small symmetric positive semi-definite G by Gaussian elimination
// with partial pivoting; λ = 1e-6·mean diagonal keeps a head whose output is all zero at α = 0.
std::vector<double> solve_ridge(std::vector<double> G, std::vector<double> b) {
  const size_t n = b.size();
  double diag = 0.0;
  for (size_t i = 0; i < n; ++i) diag += G[i * n + i];
  const double lambda = std::max(1e-6 * diag / static_cast<double>(n), 1e-30);
  for (size_t i = 0; i < n; ++i) G[i * n + i] += lambda;
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::fabs(G[r * n + c]) > std::fabs(G[p * n + c])) p = r;
    if (p != c) {
      for (size_t k = 0; k < n; ++k) std::swap(G[c * n + k], G[p * n + k]);
      std::swap(b[c], b[p]);
    }
    for (size_t r = c + 1; r < n; ++r) {
      const double f = G[r * n + c] / G[c * n + c];
      for (size_t k = c; k < n; ++k) G[r * n + k] -= f * G[c * n + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= G[i * n + k] * x[k];
    x[i] = s / G[i * n + i];
  }
  return x;
}

std::vector<float> download(Ops& ops, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  ops.download(v.data(), t);
  return v;
}

}  // namespace

// Per layer, head h's contribution to the output is U_h = Y_h·Wo_hᵀ [R, C] (Y_h: the head's columns
// of what the projection reads, Wo_h: the projection's columns for the head); the normal equations
// are G = U·Uᵀ and b = U·A over the flattened [H, R·C] and [R·C], three GEMMs on the backend.
void AlignObjective::accumulate_calibration(const Batch& batch) {
  if (const Family& fam = family(student_->config().arch); fam.post_attn_norm)
    fail("calibration: a {} student's time mixing is followed by a norm, which undoes any output scale; "
         "convert it without --calibrate",
         fam.name);
  forward_layers(batch, false);
  const std::vector<int>& wkv = student_->student_config().wkv_layers;
  const int64_t Lw = static_cast<int64_t>(wkv.size()), R = B_ * T_, C = student_->config().hidden_size;
  const int64_t N = student_->student_config().head_size, H = C / N;
  const Shape lrc{Lw, R, C};
  const Tensor tgt{targets_all_.data, lrc, DType::F32, ops().device()};
  const Tensor out{outputs_.data, lrc, DType::F32, ops().device()};
  const size_t f = sizeof(float);
  Buffer buf = ops().alloc(f * static_cast<size_t>(R * N + C * N + H * R * C + R * C + H * H + H));
  char* p = static_cast<char*>(buf.data());
  auto take = [&](Shape sh) {
    Tensor t{p, sh, DType::F32, ops().device()};
    p += f * static_cast<size_t>(sh.numel());
    return t;
  };
  const Tensor yh = take({R, N}), wh = take({C, N}), u = take({H, R * C}), a_dev = take({1, R * C});
  const Tensor g_dev = take({H, H}), b_dev = take({1, H});
  normal_.resize(static_cast<size_t>(Lw));
  std::vector<float> yh_host(static_cast<size_t>(R * N)), wh_host(static_cast<size_t>(C * N));
  for (int64_t j = 0; j < Lw; ++j) {
    const int layer = wkv[static_cast<size_t>(j)];
    const std::vector<float> y = download(ops(), backprop_.time_mix_output_input(layer).slice_rows(0, R));
    const std::vector<float> wo = download(ops(), student_->layers()[static_cast<size_t>(layer)].output);  // [C, C]
    const Tensor a_rows = tgt.slice_rows(j, j + 1).reshape({R, C});
    const std::vector<float> a = download(ops(), a_rows), o = download(ops(), out.slice_rows(j, j + 1).reshape({R, C}));
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < R; ++t)
        std::copy_n(y.data() + t * C + h * N, N, yh_host.data() + t * N);
      for (int64_t c = 0; c < C; ++c)
        std::copy_n(wo.data() + c * C + h * N, N, wh_host.data() + c * N);
      ops().upload(yh, yh_host.data());
      ops().upload(wh, wh_host.data());
      ops().matmul(u.slice_rows(h, h + 1).reshape({R, C}), yh, wh);
    }
    ops().upload(a_dev, a.data());
    ops().matmul(g_dev, u, u);
    ops().matmul(b_dev, a_dev, u);
    const std::vector<float> G = download(ops(), g_dev), b = download(ops(), b_dev);
    NormalEquations& ne = normal_[static_cast<size_t>(j)];
    ne.G.resize(static_cast<size_t>(H * H));
    ne.b.resize(static_cast<size_t>(H));
    for (size_t i = 0; i < G.size(); ++i) ne.G[i] += G[i];
    for (size_t i = 0; i < b.size(); ++i) ne.b[i] += b[i];
    for (size_t i = 0; i < a.size(); ++i) {
      ne.aa += static_cast<double>(a[i]) * a[i];
      ne.err += static_cast<double>(a[i] - o[i]) * (a[i] - o[i]);
    }
    ne.rows += R;
  }
}

AlignObjective::Calibration AlignObjective::apply_calibration() {
  ARWKV_ASSERT(!normal_.empty(), "apply_calibration before accumulate_calibration");
  const std::vector<int>& wkv = student_->student_config().wkv_layers;
  const int64_t C = student_->config().hidden_size, N = student_->student_config().head_size, H = C / N;
  Calibration out;
  for (size_t j = 0; j < normal_.size(); ++j) {
    const NormalEquations& ne = normal_[j];
    const std::vector<double> alpha = solve_ridge(ne.G, ne.b);
    double quad = 0.0, lin = 0.0;  // ‖A − Σ α_h u_h‖² = ‖A‖² − 2αᵀb + αᵀGα
    for (int64_t h = 0; h < H; ++h) {
      lin += alpha[static_cast<size_t>(h)] * ne.b[static_cast<size_t>(h)];
      for (int64_t g = 0; g < H; ++g)
        quad += alpha[static_cast<size_t>(h)] * ne.G[static_cast<size_t>(h * H + g)] * alpha[static_cast<size_t>(g)];
    }
    const double denom = static_cast<double>(ne.rows * C);
    out.layers.push_back(wkv[j]);
    out.before.push_back(ne.err / denom);
    out.after.push_back(std::max(0.0, ne.aa - 2.0 * lin + quad) / denom);
    out.silent.push_back(ne.aa / denom);
    out.scales.push_back(alpha);

    const Tensor& w = student_->layers()[static_cast<size_t>(wkv[j])].output;
    std::vector<float> wo = download(ops(), w);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < C; ++i) wo[static_cast<size_t>(c * C + i)] *= static_cast<float>(alpha[static_cast<size_t>(i / N)]);
    ops().upload(w, wo.data());
  }
  normal_.clear();
  return out;
}

CalibrateReport calibrate_student(const CalibrateOptions& o) {
  namespace fs = std::filesystem;
  if (o.tokens < 1 || o.seq_len < 2) fail("{}: calibration needs tokens ≥ 1 and seq_len ≥ 2", o.student);
  register_builtin_objectives();
  std::unique_ptr<Ops> ops = make_ops(o.backend);
  const Dataset data = Dataset::open(o.data);
  RunConfig run;
  run.teacher = o.teacher;
  run.data = o.data;
  StageConfig st;
  st.name = "calibrate";
  st.kind = "align";
  st.train = {"time_mix"};
  TrainRng rng(o.seed);
  const RunContext ctx{&run, 0, o.student, &data, ops.get(), &rng};
  std::unique_ptr<Objective> obj = make_objective("align", st, ctx);
  auto* align = dynamic_cast<AlignObjective*>(obj.get());
  ARWKV_ASSERT(align != nullptr, "the align kind is not an AlignObjective");

  const int64_t T = std::min<int64_t>(o.seq_len, std::max<int64_t>(2, o.tokens)), B = 1;
  BatchIterator it(data, DataSplit::Train, BatchOptions{B, T, o.seed, true});
  Batch batch;
  CalibrateReport report;
  for (; report.tokens < o.tokens; report.tokens += B * T) {
    it.next(batch);
    align->accumulate_calibration(batch);
  }
  AlignObjective::Calibration c = align->apply_calibration();
  report.layers = std::move(c.layers);
  report.before = std::move(c.before);
  report.after = std::move(c.after);
  report.silent = std::move(c.silent);
  report.scales = std::move(c.scales);

  // The student appears calibrated or not at all: written beside, then swapped in.
  const fs::path dir = fs::path(o.student), tmp = dir.string() + ".calibrate-tmp", old = dir.string() + ".calibrate-old";
  fs::remove_all(tmp);
  fs::remove_all(old);
  fs::create_directories(tmp);
  obj->save_student(tmp.string());
  for (const auto& e : fs::directory_iterator(dir))  // files save_student does not write stay
    if (!fs::exists(tmp / e.path().filename())) fs::copy(e.path(), tmp / e.path().filename(), fs::copy_options::recursive);
  fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
  return report;
}

}  // namespace arwkv
