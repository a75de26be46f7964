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
};

constexpr int kWidth = 960, kPanel = 320, kLeft = 80, kRight = 24, kTop = 34, kBottom = 40;
constexpr Rgb kWhite{255, 255, 255}, kInk{40, 40, 40}, kGrid{225, 225, 225}, kRaw{170, 200, 235},
    kSmooth{20, 80, 170}, kVal{200, 30, 30};

std::map<int, Series> read_series(const std::string& path) {
  std::map<int, Series> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("stage_index") || !j.contains("loss")) continue;
    Series& s = out[j["stage_index"].get<int>()];
    s.name = j.value("stage", "");
    const double x = j.value("tokens", 0.0), y = j["loss"].get<double>();
    if (!std::isfinite(y)) continue;
    if (j.value("type", "") == "val") {
      s.vx.push_back(x);
      s.vy.push_back(y);
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

void draw_panel(Image& img, int top, const Series& s) {
  const int x0 = kLeft, x1 = kWidth - kRight, y0 = top + kTop, y1 = top + kPanel - kBottom;
  double xmax = 1, ylo = INFINITY, yhi = -INFINITY;
  for (const auto* v : {&s.x, &s.vx})
    for (double x : *v) xmax = std::max(xmax, x);
  for (const auto* v : {&s.y, &s.vy})
    for (double y : *v) {
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
  if (!std::isfinite(ylo)) {
    ylo = 0;
    yhi = 1;
  } else if (!(yhi > ylo)) {
    const double d = std::max(1e-3, std::fabs(ylo) * 0.1);
    ylo -= d / 2;
    yhi = ylo + d;
  }
  const double pad = (yhi - ylo) * 0.05;
  ylo -= pad;
  yhi += pad;
  auto px = [&](double x) { return x0 + (x1 - x0) * x / xmax; };
  auto py = [&](double y) { return y1 - (y1 - y0) * (y - ylo) / (yhi - ylo); };

  img.text(x0, top + 10, fmt::format("stage {}: loss vs tokens", s.name), kInk, 2);
  for (double t : ticks(ylo, yhi, 5)) {
    const int y = static_cast<int>(std::lround(py(t)));
    img.line(x0, y, x1, y, kGrid);
    const std::string label = fmt::format("{:.4g}", t);
    img.text(x0 - 6 - Image::text_width(label), y - 3, label, kInk);
  }
  for (double t : ticks(0, xmax, 6)) {
    const int x = static_cast<int>(std::lround(px(t)));
    img.line(x, y0, x, y1, kGrid);
    const std::string label = human_count(t);
    img.text(x - Image::text_width(label) / 2, y1 + 6, label, kInk);
  }
  img.line(x0, y0, x0, y1, kInk);
  img.line(x0, y1, x1, y1, kInk);
  const std::vector<double> sm = smooth(s.y);
  for (size_t i = 1; i < s.x.size(); ++i) img.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), kRaw);
  for (size_t i = 1; i < s.x.size(); ++i) img.line(px(s.x[i - 1]), py(sm[i - 1]), px(s.x[i]), py(sm[i]), kSmooth, 2);
  for (size_t i = 0; i < s.vx.size(); ++i) {
    if (i > 0) img.line(px(s.vx[i - 1]), py(s.vy[i - 1]), px(s.vx[i]), py(s.vy[i]), kVal, 2);
    const int cx = static_cast<int>(std::lround(px(s.vx[i]))), cy = static_cast<int>(std::lround(py(s.vy[i])));
    img.rect(cx - 2, cy - 2, cx + 2, cy + 2, kVal);
  }
  int lx = x1 - 260;
  img.rect(lx, top + 14, lx + 14, top + 15, kSmooth);
  lx += 20 + img.text(lx + 20, top + 11, "train (smoothed)", kInk);
  img.rect(lx + 16, top + 14, lx + 30, top + 15, kVal);
  img.text(lx + 36, top + 11, "validation", kInk);
}

}  // namespace

void draw_curves(const std::string& metrics_path, const std::string& png_path) {
  const std::map<int, Series> series = read_series(metrics_path);
  if (series.empty()) return;
  Image img(kWidth, kPanel * static_cast<int>(series.size()), kWhite);
  int top = 0;
  for (const auto& [index, s] : series) {
    draw_panel(img, top, s);
    top += kPanel;
  }
  img.write_png(png_path);
}

}  // namespace arwkv
