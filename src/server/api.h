// The OpenAI-compatible request and response bodies: parsing and checking /v1/completions and
// /v1/chat/completions requests into sequences for the scheduler, and writing the JSON answers
// (whole responses and server-sent-event chunks). What a client can get wrong throws ApiError.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "infer/loaded_model.h"
#include "server/scheduler.h"

namespace arwkv {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type, std::string code)
      : std::runtime_error(message), status(status), type(std::move(type)), code(std::move(code)) {}
  int status;
  std::string type, code;
};

nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& code);

// What the API layer knows about the served model.
struct ApiModel {
  const LoadedModel& m;
  std::string id;    // the name clients use
  std::string path;  // also accepted as its name
  int64_t ctx = 4096;
};

struct ApiRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::vector<SequenceRequest> sequences;
};

ApiRequest parse_completion_request(const ApiModel& model, const std::string& body);
ApiRequest parse_chat_request(const ApiModel& model, const std::string& body);

// The OpenAI logprobs object of a completion choice: tokens, token_logprobs, top_logprobs, text_offset.
nlohmann::json logprobs_json(const std::vector<TokenLogprob>& tokens);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
nlohmann::json usage_json(const Usage& u);

// One choice of a whole (non-streamed) response, or of a streamed chunk (finish_reason "" = null).
nlohmann::json completion_choice(size_t index, const SequenceOutput& out, const std::string& finish_reason,
                                 bool with_logprobs);
nlohmann::json chat_choice(size_t index, const std::string& text, const std::string& finish_reason);
nlohmann::json chat_delta_choice(size_t index, const nlohmann::json& delta, const std::string& finish_reason);

// The envelope of a response or chunk: id, object, created, model, choices.
nlohmann::json response_envelope(const std::string& id, const char* object, const std::string& model,
                                 nlohmann::json choices);

}  // namespace arwkv
