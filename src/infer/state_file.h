// Saving and restoring a model's whole state (an RNN's matrices and shifted tokens, or a KV
// cache) with the logits of the last token, so generation continues exactly where it stopped.
//
// File layout (little-endian):
//   8 bytes   magic "ARWKVST\0"
//   u32       format version (1)
//   u32       0 (reserved)
//   u64       header length H, then H bytes of JSON: {"model": fingerprint, "n_tokens": n,
//             "tensors": [{"name", "shape", "offset", "nbytes"}...], "logits": V}
//   payload   the tensors as raw f32 at their offsets, then the V logits as f32
//   u64       FNV-1a 64 checksum of every byte before it
// Restoring checks the magic, version, checksum, model fingerprint and every tensor's name and
// shape; any mismatch is an error naming the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/language_model.h"

namespace arwkv {

// Tokens held by the state in a state file (to size a state before restoring into it).
int64_t state_file_tokens(const std::string& path);

void save_state_file(const std::string& path, const LanguageModel& model, ModelState& state,
                     std::span<const float> last_logits);
// Restores into state (sized to hold the file's tokens) and returns the saved last logits.
std::vector<float> load_state_file(const std::string& path, const LanguageModel& model, ModelState& state);

}  // namespace arwkv
