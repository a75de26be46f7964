// Chat prompts from the model's chat template. We do not run Jinja: the template is recognised as
// one of the formats below by a marker in its text, and the format renders the conversation.
// - ChatML (FORMATS.md §5; Qwen2.5, SmolLM2): `<|im_start|>role\ncontent<|im_end|>\n` per message,
//   `<|im_start|>assistant\n` as the generation prompt; the template's default system prompt (the
//   literal system turn it emits when the conversation has none) is read out of its text.
// - Gemma: `<bos>` first, then `<start_of_turn>role\ncontent<end_of_turn>\n` with content trimmed
//   and the assistant's role spelled "model"; a leading system message is folded into the first
//   turn as `system\n\nuser`; roles must alternate user/assistant (the template raises otherwise);
//   `<start_of_turn>model\n` as the generation prompt.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer_data.h"

namespace arwkv {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
};

struct ChatFormat {
  const char* name;
  std::vector<const char*> markers;  // texts the template holds, all of them
  const char* begin;                 // before the first turn
  const char* turn_start;            // then the role and "\n"
  const char* turn_end;              // after the content (the model's end of turn, a stop token)
  const char* after_turn;            // after turn_end
  const char* assistant_role;        // how the template spells the assistant's role
  bool system_in_first_turn;         // a leading system message prefixes the first turn's content
  bool trim_content;                 // content | trim
  bool roles_alternate;              // user, assistant, user, ... or an error
  bool default_system_prompt;        // insert the template's literal system turn when there is none
  bool tool_responses;               // Qwen2.5's grouping of tool messages (when <tool_response> is there)
};

// The format of a template; throws arwkv::Error naming the tokenizer's source when the template is
// missing or none of the formats.
const ChatFormat& chat_format(const TokenizerData& data);

// Throws arwkv::Error naming the tokenizer's source when the template is missing or unknown, or the
// conversation is one the template refuses.
std::string apply_chat_template(const TokenizerData& data, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

// The header of an assistant turn (what the generation prompt adds), and a message's content as
// the format writes it.
std::string assistant_header(const ChatFormat& format);
std::string chat_content(const ChatFormat& format, const std::string& content);

// The literal system prompt a ChatML template inserts when the first message is not a system
// message, or "" when it inserts none.
std::string default_system_prompt(const std::string& chat_template);

}  // namespace arwkv
