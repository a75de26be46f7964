// Token ids of one training document. Plain text is encoded as text (special-token strings in it
// stay ordinary text), with BOS in front where the tokenizer adds it (Gemma). A chat is rendered
// with the model's chat template (ChatML or Gemma, chat.h; a BOS it needs is in the rendered text)
// and encoded with special tokens on; its mask marks the tokens of each assistant turn's content
// and closing end-of-turn token (<|im_end|>, <end_of_turn>; not the `<|im_start|>assistant\n`
// header, not the newline after the end of turn, not other turns). A token
// that straddles the edge of an assistant span counts as inside it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

struct TokenizedDocument {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // per token for chats; empty for plain text
};

TokenizedDocument tokenize_text(const Tokenizer& tokenizer, const std::string& text);

// Throws arwkv::Error naming source when the template is not a known format or the mask cannot be aligned
// with the tokens (text that tokenization does not reproduce byte for byte).
TokenizedDocument tokenize_chat(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const std::string& source);

// The rendered chat and the byte ranges [begin, end) of its assistant spans (content + end of turn).
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> assistant_spans;
};
RenderedChat render_chat(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                         const std::string& source);

// The tokenizer of any model path: a tokenizer.json file, a directory holding one (an HF or
// student checkpoint), or whatever Checkpoint::open reads (a GGUF file's metadata).
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path);

}  // namespace arwkv
