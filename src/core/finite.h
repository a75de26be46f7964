// Non-finite numbers (NaN, ±Inf) in model weights. A model file that holds any is refused when it
// loads, naming the file, the tensor and how many values, unless the program was told to allow it
// (arwkv --allow-nonfinite): then it loads with one warning line per tensor.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace arwkv {

void set_allow_nonfinite(bool allow);
bool allow_nonfinite();

int64_t count_nonfinite(std::span<const float> values);

// Throws arwkv::Error (or, when allowed, warns on stderr) if values holds a NaN or an infinity.
void check_finite_weights(std::span<const float> values, const std::string& file, const std::string& tensor);

}  // namespace arwkv
