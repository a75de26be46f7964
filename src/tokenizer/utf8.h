// UTF-8 helpers for the tokenizer: stepping over one character (valid, invalid or cut off at the
// end), lossy repair to valid UTF-8 the way HF and Rust's from_utf8_lossy do it (each maximal
// invalid subpart becomes one U+FFFD), and the GPT-2 byte-level alphabet.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace arwkv::utf8 {

// One step over s starting at i: len bytes (≥ 1). valid: a whole well-formed character.
// truncated: not valid, but a prefix of a well-formed character that s ends inside.
struct Step {
  size_t len = 1;
  bool valid = false;
  bool truncated = false;
};
Step step(std::string_view s, size_t i);

void append(std::string& out, uint32_t code_point);
std::string repair(std::string_view bytes);  // invalid subparts → U+FFFD
bool is_valid(std::string_view bytes);
// Length of the longest prefix that does not end inside a cut-off (truncated) character.
size_t complete_prefix(std::string_view bytes);

// GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 + n.
const std::array<uint32_t, 256>& byte_to_code_point();
// Inverse: the byte for a code point of the alphabet, or -1.
int byte_of_code_point(uint32_t cp);
// Bytes → their byte-level string (UTF-8), and back (false when a character is outside the alphabet).
std::string to_byte_level(std::string_view bytes);
bool from_byte_level(std::string_view text, std::string& bytes);

}  // namespace arwkv::utf8
