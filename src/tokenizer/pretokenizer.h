// The pre-tokenizer: a list of regexes (HF Split with behavior "Isolated", Digits, ByteLevel's
// GPT-2 pattern) compiled with PCRE2 in UTF + UCP mode, with JIT when available. Each regex splits
// every piece left by the previous one; matches and the gaps between them are all pieces. Invalid
// UTF-8 never matches anything, so it ends up in gap pieces that byte-level BPE still encodes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace arwkv {

class PreTokenizer {
 public:
  // Throws arwkv::Error naming source and the pattern when a regex does not compile.
  PreTokenizer(const std::vector<std::string>& regexes, const std::string& source);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Appends the pieces of text (views into text) to out.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

// HF/Oniguruma `\s` is Unicode White_Space; PCRE2's differs (e.g. U+0085), so the pattern's \s and
// \S are spelled out as explicit classes. Other syntax passes through.
std::string hf_regex_to_pcre2(std::string_view pattern);

}  // namespace arwkv
