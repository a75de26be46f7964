// Shared test helpers: where fixtures live, seeded random tensors, and closeness measures.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace arwkv::test {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

#ifndef ARWKV_TEST_DATA_DIR
#define ARWKV_TEST_DATA_DIR "tests/data"
#endif
#ifndef ARWKV_MODELS_DIR
#define ARWKV_MODELS_DIR "models"
#endif
#ifndef ARWKV_BIN_PATH
#define ARWKV_BIN_PATH "build/arwkv"
#endif

// Committed fixtures (tests/data).
inline std::string data_path(const std::string& rel) { return env_or("ARWKV_TEST_DATA", ARWKV_TEST_DATA_DIR) + "/" + rel; }

// Downloaded models (models/); tests that need one skip with a message when it is absent.
inline std::string model_path(const std::string& rel) { return env_or("ARWKV_MODELS", ARWKV_MODELS_DIR) + "/" + rel; }

// The arwkv program.
inline std::string arwkv_bin() { return env_or("ARWKV_BIN", ARWKV_BIN_PATH); }

#define ARWKV_REQUIRE_FILE(path)                                                             \
  do {                                                                                       \
    if (!std::filesystem::exists(path))                                                      \
      GTEST_SKIP() << "missing " << (path) << " (run scripts/fetch_models.sh to fetch it)";   \
  } while (0)

// The whole file as little-endian float32 values (the oracles' raw dumps).
inline std::vector<float> read_f32_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  EXPECT_TRUE(in) << "cannot read " << path;
  if (!in) return {};
  std::vector<float> v(static_cast<size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// max |a - b| / max(max |b|, tiny): one number that says how far a is from reference b.
inline double max_rel_error(const float* a, const float* b, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return num / std::max(den, 1e-30);
}

inline double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return max_rel_error(a.data(), b.data(), std::min(a.size(), b.size()));
}

}  // namespace arwkv::test
