// UTF-8 stepping and repair (Unicode 15 §3.9, table 3-7 of well-formed byte sequences), and the
// GPT-2 byte-level alphabet.
#include "tokenizer/utf8.h"

namespace arwkv::utf8 {

namespace {

// Allowed range of the second byte after a lead byte, and the sequence length; 0 = not a lead.
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

Step step(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  const Lead lead = lead_of(b);
  if (lead.len == 1) return {1, true, false};
  if (lead.len == 0) return {1, false, false};
  size_t k = 1;
  for (; k < static_cast<size_t>(lead.len); ++k) {
    if (i + k >= s.size()) return {k, false, true};
    const auto c = static_cast<uint8_t>(s[i + k]);
    const uint8_t lo = k == 1 ? lead.lo : 0x80, hi = k == 1 ? lead.hi : 0xBF;
    if (c < lo || c > hi) return {k, false, false};
  }
  return {k, true, false};
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string repair(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const Step st = step(bytes, i);
    if (st.valid)
      out.append(bytes.substr(i, st.len));
    else
      out += "\xEF\xBF\xBD";
    i += st.len;
  }
  return out;
}

bool is_valid(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const Step st = step(bytes, i);
    if (!st.valid) return false;
    i += st.len;
  }
  return true;
}

size_t complete_prefix(std::string_view bytes) {
  // A cut-off character is at most 3 bytes long and starts at one of the last 3 positions.
  const size_t from = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t i = from; i < bytes.size(); ++i) {
    if (lead_of(static_cast<uint8_t>(bytes[i])).len >= 2 && step(bytes, i).truncated) return i;
  }
  return bytes.size();
}

const std::array<uint32_t, 256>& byte_to_code_point() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

int byte_of_code_point(uint32_t cp) {
  static const std::array<int16_t, 512> inverse = [] {
    std::array<int16_t, 512> inv;
    inv.fill(-1);
    const auto& fwd = byte_to_code_point();
    for (int b = 0; b < 256; ++b) inv[fwd[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

std::string to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  const auto& table = byte_to_code_point();
  for (char c : bytes) append(out, table[static_cast<uint8_t>(c)]);
  return out;
}

bool from_byte_level(std::string_view text, std::string& bytes) {
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    const Step st = step(text, i);
    if (!st.valid) return false;
    uint32_t cp = static_cast<uint8_t>(text[i]);
    if (st.len > 1) {
      cp &= 0xFFu >> (st.len + 1);
      for (size_t k = 1; k < st.len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3F);
    }
    const int b = byte_of_code_point(cp);
    if (b < 0) return false;
    bytes += static_cast<char>(b);
    i += st.len;
  }
  return true;
}

}  // namespace arwkv::utf8
