// The generation loop over any LanguageModel: one pass over the prompt, then one token at a time,
// each new token handed to a callback as soon as it is chosen, stopping at a stop token, at the
// token limit, or when the callback says so.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "infer/sampler.h"
#include "model/language_model.h"

namespace arwkv {

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplerOptions sampler;
  std::vector<int32_t> stop_ids;  // generation ends on these (they are not passed to on_token)
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t new_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  bool stopped = false;  // ended on a stop token or by the callback, not by the token limit

  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

// Feeds prompt into state, then samples. Afterwards state holds the prompt and every token passed
// to on_token (a stop token is not fed), so a chat continues by feeding its closing tokens.
// logits, when given: on entry, with an empty prompt, the logits of the state's last token (a
// restored state's) to sample the first token from; on return, the logits after the last token fed.
GenerateStats generate(const LanguageModel& model, ModelState& state, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const std::function<bool(int32_t)>& on_token,
                       std::vector<float>* logits = nullptr);

}  // namespace arwkv
