// Helpers of the backward, loss and optimiser tests: host tensors for the reference backend,
// device tensors for any backend, central finite differences of a double-precision function, and
// the closeness of fp32 results to double expectations.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "backend/ops.h"
#include "test_util.h"

namespace arwkv::test {

// An fp32 or I32 tensor in host memory (what the reference backend works on).
struct Host {
  std::vector<float> f;
  std::vector<int32_t> i;
  Shape shape;
  Host(Shape s, std::vector<float> v) : f(std::move(v)), shape(s) { EXPECT_EQ(f.size(), size_t(s.numel())); }
  Host(Shape s, std::vector<int32_t> v) : i(std::move(v)), shape(s) { EXPECT_EQ(i.size(), size_t(s.numel())); }
  Tensor t() {
    return i.empty() && shape.numel() > 0 ? Tensor{f.data(), shape, DType::F32, Device::CPU}
                                          : Tensor{i.data(), shape, DType::I32, Device::CPU};
  }
};

// A tensor that lives on one backend, filled from host data.
struct DevTensor {
  Buffer buf;
  Tensor t;
  DevTensor(Ops& ops, Shape s, const void* host, DType dt = DType::F32) {
    buf = ops.alloc(static_cast<size_t>(s.numel()) * dtype_size(dt));
    t = Tensor{buf.data(), s, dt, ops.device()};
    if (host) ops.upload(t, host);
  }
};

inline std::vector<float> fetch(Ops& ops, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops.download(out.data(), t);
  return out;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ∂L/∂x by central differences, x perturbed in place (L reads it) and restored.
inline std::vector<double> numeric_grad(std::vector<double>& x, const std::function<double()>& loss,
                                        double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    g[i] = (up - down) / (2.0 * h);
  }
  return g;
}

// base + g, element by element (an accumulated gradient's expected value).
inline std::vector<double> plus(const std::vector<float>& base, const std::vector<double>& g) {
  std::vector<double> out(g.size());
  for (size_t i = 0; i < g.size(); ++i) out[i] = base[i] + g[i];
  return out;
}

// max |got − want| / max |want|, as max_rel_error, against a double expectation.
inline double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    num = std::max(num, std::fabs(got[i] - want[i]));
    den = std::max(den, std::fabs(want[i]));
  }
  return num / std::max(den, 1e-30);
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace arwkv::test
