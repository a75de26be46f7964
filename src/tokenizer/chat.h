// ChatML prompts (FORMATS.md §5): `<|im_start|>role\ncontent<|im_end|>\n` per message, plus
// `<|im_start|>assistant\n` as the generation prompt. We do not run Jinja: the model's template
// must be ChatML-like, and its default system prompt (the literal system turn it emits when the
// conversation has none, e.g. Qwen2.5's and SmolLM2's) is read out of the template text.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer_data.h"

namespace arwkv {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
};

// Throws arwkv::Error naming the tokenizer's source when the template is missing or not ChatML.
std::string apply_chat_template(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

// The literal system prompt a ChatML template inserts when the first message is not a system
// message, or "" when it inserts none.
std::string default_system_prompt(const std::string& chat_template);

}  // namespace arwkv
