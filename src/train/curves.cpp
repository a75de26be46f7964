// Drawing the loss curves (curves.h) on the Image raster.
#include "train/curves.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <vector>

#include "train/image.h"
#include "train/metrics.h"

namespace arwkv {
namespace {

struct Series {
  std::string name;
  std::vector<double> x, y;        // train: tokens, loss
  std::vector<double> vx, vy;      // validation
  std::vector<double> kx, kl, top1;  // validation against the teacher: KL (nats) and top-1 agreement
};

constexpr int kWidth = 960, kPanel = 330, kLeft = 80, kRight = 24, kTop = 46, kBottom = 40;
constexpr Rgb kWhite{255, 255, 255}, kInk{40, 40, 40}, kGrid{225, 225, 225}, kRaw{170, 200, 235},
    kSmooth{20, 80, 170}, kVal{200, 30, 30}, kKl{230, 120, 20};

std::map<int, Series> read_series(const std::string& path) {
  std::map<int, Series> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("stage_index") || !j.contains("loss") ||
        !j["loss"].is_number())
      continue;
    const std::string type = j.value("type", "");
    if (type != "train" && type != "val") continue;  // e.g. "skip": a step that updated nothing
    Series& s = out[j["stage_index"].get<int>()];
    s.name = j.value("stage", "");
    const double x = j.value("tokens", 0.0), y = j["loss"].get<double>();
    if (!std::isfinite(y)) continue;
    if (type == "val") {
      s.vx.push_back(x);
      s.vy.push_back(y);
      if (j.contains("kl") && j["kl"].is_number() && std::isfinite(j["kl"].get<double>())) {
        s.kx.push_back(x);
        s.kl.push_back(j["kl"].get<double>());
        s.top1.push_back(j.contains("top1") && j["top1"].is_number() ? j["top1"].get<double>() : NAN);
      }
    } else {
      s.x.push_back(x);
      s.y.push_back(y);
    }
  }
  return out;
}

// Centred moving average over about a fiftieth of the points.
std::vector<double> smooth(const std::vector<double>& y) {
  const int64_t n = static_cast<int64_t>(y.size()), half = std::max<int64_t>(1, n / 100);
  std::vector<double> out(y.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = std::max<int64_t>(0, i - half), b = std::min(n - 1, i + half);
    double s = 0;
    for (int64_t k = a; k <= b; ++k) s += y[static_cast<size_t>(k)];
    out[static_cast<size_t>(i)] = s / static_cast<double>(b - a + 1);
  }
  return out;
}

// About `target` round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

// A value axis: linear, or log10 when every value is positive and they span more than a decade
// and a half (an align loss falls from ~10⁴ to ~1).
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  int y0 = 0, y1 = 1;  // pixel rows of hi and lo
  double at(double v) const {
    const double a = log ? std::log10(std::max(v, 1e-300)) : v;
    return y1 - (y1 - y0) * (a - lo) / (hi - lo);
  }
};

Axis value_axis(const std::vector<const std::vector<double>*>& values, int y0, int y1) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* v : values)
    for (double y : *v)
      if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
  Axis a;
  a.y0 = y0, a.y1 = y1;
  if (!std::isfinite(lo)) return a;
  a.log = lo > 0 && hi / lo > 30;
  if (a.log) lo = std::log10(lo), hi = std::log10(hi);
  if (!(hi > lo)) {
    const double d = std::max(1e-3, std::fabs(lo) * 0.1);
    lo -= d / 2;
    hi = lo + d;
  }
  const double pad = (hi - lo) * 0.05;
  a.lo = lo - pad, a.hi = hi + pad;
  return a;
}

void value_ticks(Image& img, const Axis& a, int x0, int x1) {
  std::vector<double> ts;
  if (a.log) {
    for (double e = std::floor(a.lo); e <= a.hi; e += 1)
      for (double m : {1.0, 2.0, 5.0})
        if (const double v = e + std::log10(m); v >= a.lo && v <= a.hi) ts.push_back(std::pow(10.0, v));
  } else {
    ts = ticks(a.lo, a.hi, 5);
  }
  for (double t : ts) {
    const int y = static_cast<int>(std::lround(a.at(t)));
    img.line(x0, y, x1, y, kGrid);
    const std::string label = fmt::format("{:.4g}", t);
    img.text(x0 - 6 - Image::text_width(label), y - 3, label, kInk);
  }
}

void token_ticks(Image& img, double xmax, int x0, int x1, int y0, int y1) {
  for (double t : ticks(0, xmax, 5)) {
    const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t / xmax));
    img.line(x, y0, x, y1, kGrid);
    const std::string label = human_count(t);
    img.text(x - Image::text_width(label) / 2, y1 + 6, label, kInk);
  }
  img.line(x0, y0, x0, y1, kInk);
  img.line(x0, y1, x1, y1, kInk);
}

void polyline(Image& img, const std::vector<double>& x, const std::vector<double>& y, double xmax, int x0, int x1,
              const Axis& a, Rgb c, int thickness, bool dots) {
  auto px = [&](double v) { return x0 + (x1 - x0) * v / xmax; };
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(y[i])) continue;
    if (i > 0 && std::isfinite(y[i - 1])) img.line(px(x[i - 1]), a.at(y[i - 1]), px(x[i]), a.at(y[i]), c, thickness);
    if (dots) {
      const int cx = static_cast<int>(std::lround(px(x[i]))), cy = static_cast<int>(std::lround(a.at(y[i])));
      img.rect(cx - 2, cy - 2, cx + 2, cy + 2, c);
    }
  }
}

int legend(Image& img, int x, int y, Rgb c, const std::string& label) {
  img.rect(x, y + 3, x + 14, y + 4, c);
  return x + 20 + img.text(x + 20, y, label, kInk) + 16;
}

// Left: the stage's training loss (raw and smoothed) and validation loss. Right, when the
// validation compared with the teacher: its KL (nats) and, printed along it, the top-1 agreement.
void draw_stage(Image& img, int top, const Series& s) {
  const bool right = !s.kx.empty();
  const int mid = kWidth / 2, x0 = kLeft, x1 = right ? mid - kRight : kWidth - kRight;
  const int y0 = top + kTop, y1 = top + kPanel - kBottom;
  double xmax = 1;
  for (const auto* v : {&s.x, &s.vx})
    for (double x : *v) xmax = std::max(xmax, x);
  const std::vector<double> sm = smooth(s.y);
  const Axis a = value_axis({&s.y, &s.vy}, y0, y1);
  img.text(x0, top + 10, fmt::format("stage {}: loss{}", s.name, a.log ? " (log)" : ""), kInk, 2);
  value_ticks(img, a, x0, x1);
  token_ticks(img, xmax, x0, x1, y0, y1);
  polyline(img, s.x, s.y, xmax, x0, x1, a, kRaw, 1, false);
  polyline(img, s.x, sm, xmax, x0, x1, a, kSmooth, 2, false);
  polyline(img, s.vx, s.vy, xmax, x0, x1, a, kVal, 2, true);
  legend(img, legend(img, x1 - 250, top + 30, kSmooth, "train (smoothed)"), top + 30, kVal, "validation");
  if (!right) return;

  const int r0 = mid + kLeft, r1 = kWidth - kRight;
  const Axis k = value_axis({&s.kl}, y0, y1);
  img.text(r0, top + 10, fmt::format("validation KL to teacher{}", k.log ? " (log)" : ""), kInk, 2);
  value_ticks(img, k, r0, r1);
  token_ticks(img, xmax, r0, r1, y0, y1);
  polyline(img, s.kx, s.kl, xmax, r0, r1, k, kKl, 2, true);
  for (size_t i = 0; i < s.kx.size(); ++i)
    if (std::isfinite(s.top1[i]) && (i + 1 == s.kx.size() || s.kx.size() <= 8 || i % 2 == 0)) {
      const int cx = static_cast<int>(std::lround(r0 + (r1 - r0) * s.kx[i] / xmax));
      const std::string label = fmt::format("{:.2f}", s.top1[i]);
      img.text(std::min(cx - Image::text_width(label) / 2, r1 - Image::text_width(label)),
               static_cast<int>(std::lround(k.at(s.kl[i]))) - 14, label, kInk);
    }
  legend(img, r1 - 250, top + 30, kKl, "KL (nats), top-1 at points");
}

// The tokens-of-context axis of draw_position_curves: log2, ticks at powers of two.
void context_ticks(Image& img, double lo, double hi, int x0, int x1, int y0, int y1) {
  for (double e = std::ceil(lo); e <= hi; e += 1) {
    const int x = static_cast<int>(std::lround(x0 + (x1 - x0) * (e - lo) / (hi - lo)));
    img.line(x, y0, x, y1, kGrid);
    const std::string label = human_count(std::exp2(e));
    img.text(x - Image::text_width(label) / 2, y1 + 6, label, kInk);
  }
  img.line(x0, y0, x0, y1, kInk);
  img.line(x0, y1, x1, y1, kInk);
}

void context_panel(Image& img, const std::string& title, const std::vector<const PositionCurve*>& curves,
                   const std::vector<Rgb>& colours, int x0, int x1) {
  const int y0 = kTop, y1 = kPanel - kBottom;
  double lo = INFINITY, hi = -INFINITY;
  std::vector<const std::vector<double>*> values;
  for (const PositionCurve* c : curves) {
    values.push_back(&c->value);
    for (double x : c->context) lo = std::min(lo, std::log2(x)), hi = std::max(hi, std::log2(x));
  }
  if (!(hi > lo)) lo = 0, hi = std::max(hi, 1.0);
  const Axis a = value_axis(values, y0, y1);
  img.text(x0, 10, title + (a.log ? " (log)" : ""), kInk, 2);
  value_ticks(img, a, x0, x1);
  context_ticks(img, lo, hi, x0, x1, y0, y1);
  int lx = x0 + 10;
  for (size_t i = 0; i < curves.size(); ++i) {
    std::vector<double> x;
    for (double c : curves[i]->context) x.push_back(std::log2(c) - lo);
    polyline(img, x, curves[i]->value, hi - lo, x0, x1, a, colours[i % colours.size()], 2, true);
    lx = legend(img, lx, 30, colours[i % colours.size()], curves[i]->name);
  }
}

}  // namespace

void draw_position_curves(const std::string& title, const std::vector<PositionCurve>& loss, const PositionCurve* kl,
                          const std::string& png_path) {
  Image img(kWidth, kPanel + 20, kWhite);
  const int mid = kWidth / 2;
  std::vector<const PositionCurve*> curves;
  for (const PositionCurve& c : loss) curves.push_back(&c);
  context_panel(img, title, curves, {kSmooth, kVal, kKl, kRaw}, kLeft, kl ? mid - kRight : kWidth - kRight);
  if (kl) context_panel(img, "KL to teacher (nats)", {kl}, {kKl}, mid + kLeft, kWidth - kRight);
  const std::string xlabel = "tokens of context";
  img.text((kWidth - Image::text_width(xlabel)) / 2, kPanel + 6, xlabel, kInk);
  img.write_png(png_path);
}

void draw_curves(const std::string& metrics_path, const std::string& png_path) {
  const std::map<int, Series> series = read_series(metrics_path);
  if (series.empty()) return;
  Image img(kWidth, kPanel * static_cast<int>(series.size()), kWhite);
  int top = 0;
  for (const auto& [index, s] : series) {
    draw_stage(img, top, s);
    top += kPanel;
  }
  img.write_png(png_path);
}

}  // namespace arwkv
