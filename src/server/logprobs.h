// Log-probabilities of tokens from a model's logits, in the OpenAI completions logprobs format.
#pragma once

#include <cstdint>
#include <span>

#include "server/sequence.h"
#include "tokenizer/tokenizer.h"

namespace arwkv {

// The log-softmax of logits at id and the n_top most likely tokens with theirs (none when n_top < 0).
// text_offset is left 0.
TokenLogprob token_logprob(std::span<const float> logits, int32_t id, int n_top, const Tokenizer& tok);

}  // namespace arwkv
