#include "server/api.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>

#include "tokenizer/chat.h"

namespace arwkv {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& message, const std::string& code = "invalid_value") {
  throw ApiError(400, message, "invalid_request_error", code);
}

json parse_body(const std::string& body) {
  try {
    json j = json::parse(body);
    if (!j.is_object()) bad("the request body must be a JSON object", "invalid_json");
    return j;
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number too large for a double
    bad(std::string("the request body is not valid JSON: ") + e.what(), "invalid_json");
  }
}

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  const json* v = field(j, key);
  if (!v) return def;
  if (!v->is_number_integer()) bad(fmt::format("'{}' must be an integer", key), "invalid_type");
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, x));
  return x;
}

double get_number(const json& j, const char* key, double def, double lo, double hi) {
  const json* v = field(j, key);
  if (!v) return def;
  if (!v->is_number()) bad(fmt::format("'{}' must be a number", key), "invalid_type");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, x));
  return x;
}

bool get_bool(const json& j, const char* key, bool def) {
  const json* v = field(j, key);
  if (!v) return def;
  if (!v->is_boolean()) bad(fmt::format("'{}' must be true or false", key), "invalid_type");
  return v->get<bool>();
}

std::vector<std::string> get_stop(const json& j) {
  const json* v = field(j, "stop");
  if (!v) return {};
  std::vector<std::string> stops;
  if (v->is_string()) {
    stops.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) bad("'stop' must be a string or a list of strings", "invalid_type");
      stops.push_back(s.get<std::string>());
    }
  } else {
    bad("'stop' must be a string or a list of strings", "invalid_type");
  }
  if (stops.size() > 16) bad("'stop' may hold at most 16 strings");
  std::erase(stops, std::string());
  return stops;
}

void check_model(const ApiModel& model, const json& j) {
  const json* v = field(j, "model");
  if (!v) return;
  if (!v->is_string()) bad("'model' must be a string", "invalid_type");
  const std::string name = v->get<std::string>();
  if (name != model.id && name != model.path)
    throw ApiError(404, fmt::format("the model '{}' does not exist; this server serves '{}'", name, model.id),
                   "invalid_request_error", "model_not_found");
}

// The options every sequence of a request shares; the prompt is filled in afterwards.
SequenceRequest common_options(const json& j, int64_t default_max_tokens) {
  static std::atomic<uint64_t> next_seed{std::random_device{}()};
  SequenceRequest r;
  const char* max_key = field(j, "max_tokens") ? "max_tokens" : "max_completion_tokens";
  r.max_tokens = static_cast<int>(get_int(j, max_key, default_max_tokens, 0, 1 << 30));
  r.sampler.temperature = static_cast<float>(get_number(j, "temperature", 1.0, 0.0, 2.0));
  r.sampler.top_p = static_cast<float>(get_number(j, "top_p", 1.0, 1e-6, 1.0));
  r.sampler.top_k = static_cast<int>(get_int(j, "top_k", 0, 0, 1 << 30));
  r.sampler.presence_penalty = static_cast<float>(get_number(j, "presence_penalty", 0.0, -2.0, 2.0));
  r.sampler.frequency_penalty = static_cast<float>(get_number(j, "frequency_penalty", 0.0, -2.0, 2.0));
  r.sampler.repeat_penalty = static_cast<float>(get_number(j, "repeat_penalty", 1.0, 1.0, 10.0));
  r.sampler.repeat_last_n = static_cast<int>(get_int(j, "repeat_last_n", 64, 0, 1 << 20));
  r.sampler.seed = static_cast<uint64_t>(get_int(j, "seed", static_cast<int64_t>(next_seed++ >> 1), INT64_MIN, INT64_MAX));
  r.stop = get_stop(j);
  if (get_int(j, "n", 1, 1, 1) != 1) bad("'n' must be 1");
  return r;
}

void check_length(const ApiModel& model, const SequenceRequest& r) {
  if (r.prompt.empty()) bad("the prompt is empty", "empty_prompt");
  if (static_cast<int64_t>(r.prompt.size()) + r.max_tokens > model.ctx)
    bad(fmt::format("the prompt of {} tokens and max_tokens {} exceed the context of {} tokens", r.prompt.size(),
                    r.max_tokens, model.ctx),
        "context_length_exceeded");
}

std::vector<int32_t> token_ids(const ApiModel& model, const json& list) {
  std::vector<int32_t> ids;
  for (const json& t : list) {
    if (!t.is_number_integer()) bad("'prompt' must be a string, a list of strings, or token ids", "invalid_type");
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id >= model.m.tokenizer->vocab_size()) bad(fmt::format("token id {} is out of the vocabulary", id));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// A completions prompt: a string, a list of strings, a list of token ids or a list of such lists.
std::vector<std::vector<int32_t>> prompts(const ApiModel& model, const json& j) {
  const json* p = field(j, "prompt");
  if (!p) bad("'prompt' is required", "missing_field");
  auto one = [&](const json& x) -> std::vector<int32_t> {
    if (x.is_string()) return model.m.tokenizer->encode_start(x.get<std::string>());
    if (x.is_array()) return token_ids(model, x);
    bad("'prompt' must be a string, a list of strings, or token ids", "invalid_type");
  };
  if (p->is_string() || (p->is_array() && !p->empty() && (*p)[0].is_number())) return {one(*p)};
  if (!p->is_array() || p->empty()) bad("'prompt' must be a string, a list of strings, or token ids", "invalid_type");
  std::vector<std::vector<int32_t>> out;
  for (const json& x : *p) {
    if (!x.is_string() && !x.is_array()) bad("'prompt' must be a string, a list of strings, or token ids", "invalid_type");
    out.push_back(one(x));
  }
  if (out.size() > 64) bad("at most 64 prompts per request");
  return out;
}

std::vector<ChatMessage> messages(const json& j) {
  const json* list = field(j, "messages");
  if (!list) bad("'messages' is required", "missing_field");
  if (!list->is_array() || list->empty()) bad("'messages' must be a non-empty list", "invalid_type");
  std::vector<ChatMessage> out;
  for (const json& m : *list) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) bad("each message needs a string 'role'", "invalid_type");
    ChatMessage msg{m["role"].get<std::string>(), ""};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool")
      bad(fmt::format("unknown message role '{}'", msg.role));
    const json* c = field(m, "content");
    if (c && c->is_string()) {
      msg.content = c->get<std::string>();
    } else if (c && c->is_array()) {
      for (const json& part : *c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          bad("only text content parts are supported", "invalid_type");
        msg.content += part["text"].get<std::string>();
      }
    } else if (c) {
      bad("a message's 'content' must be a string or a list of text parts", "invalid_type");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

json error_body(const std::string& message, const std::string& type, const std::string& code) {
  return {{"error", {{"message", message}, {"type", type}, {"code", code}, {"param", nullptr}}}};
}

ApiRequest parse_completion_request(const ApiModel& model, const std::string& body) {
  const json j = parse_body(body);
  check_model(model, j);
  ApiRequest req;
  req.stream = get_bool(j, "stream", false);
  req.include_usage = field(j, "stream_options") && get_bool(j["stream_options"], "include_usage", false);
  SequenceRequest common = common_options(j, 16);
  const json* lp = field(j, "logprobs");
  if (lp && lp->is_boolean()) common.logprobs = lp->get<bool>() ? 0 : -1;
  else common.logprobs = static_cast<int>(get_int(j, "logprobs", -1, 0, 100));
  common.echo = get_bool(j, "echo", false);
  for (auto& ids : prompts(model, j)) {
    SequenceRequest r = common;
    r.prompt = std::move(ids);
    check_length(model, r);
    r.cache_points = {r.prompt.size()};
    req.sequences.push_back(std::move(r));
  }
  return req;
}

ApiRequest parse_chat_request(const ApiModel& model, const std::string& body) {
  const json j = parse_body(body);
  check_model(model, j);
  ApiRequest req;
  req.chat = true;
  req.stream = get_bool(j, "stream", false);
  req.include_usage = field(j, "stream_options") && get_bool(j["stream_options"], "include_usage", false);
  const std::vector<ChatMessage> msgs = messages(j);
  const TokenizerData& td = model.m.tokenizer->data();
  std::string text;
  try {
    text = apply_chat_template(td, msgs, true);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "invalid_request_error", "no_chat_template");
  }
  SequenceRequest r = common_options(j, -1);
  r.prompt = model.m.tokenizer->encode(text);
  if (r.max_tokens < 0) r.max_tokens = static_cast<int>(std::max<int64_t>(0, model.ctx - static_cast<int64_t>(r.prompt.size())));
  check_length(model, r);
  // The system turn (the given one or the template's default) is the prefix chats share.
  std::vector<ChatMessage> system;
  if (msgs[0].role == "system") system.push_back(msgs[0]);
  const std::vector<int32_t> head = model.m.tokenizer->encode(apply_chat_template(td, system, false));
  if (!head.empty() && head.size() < r.prompt.size() && std::equal(head.begin(), head.end(), r.prompt.begin()))
    r.cache_points.push_back(head.size());
  r.cache_points.push_back(r.prompt.size());
  req.sequences.push_back(std::move(r));
  return req;
}

json logprobs_json(const std::vector<TokenLogprob>& tokens) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const TokenLogprob& t : tokens) {
    out["tokens"].push_back(t.token);
    out["token_logprobs"].push_back(t.logprob ? json(*t.logprob) : json(nullptr));
    if (t.top) {
      json top = json::object();
      for (const auto& [tok, lp] : *t.top)
        if (!top.contains(tok)) top[tok] = lp;
      out["top_logprobs"].push_back(top);
    } else {
      out["top_logprobs"].push_back(nullptr);
    }
    out["text_offset"].push_back(t.text_offset);
  }
  return out;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

static json reason_json(const std::string& r) { return r.empty() ? json(nullptr) : json(r); }

json completion_choice(size_t index, const SequenceOutput& out, const std::string& finish_reason, bool with_logprobs) {
  return {{"index", index},
          {"text", out.text},
          {"logprobs", with_logprobs ? logprobs_json(out.tokens) : json(nullptr)},
          {"finish_reason", reason_json(finish_reason)}};
}

json chat_choice(size_t index, const std::string& text, const std::string& finish_reason) {
  return {{"index", index},
          {"message", {{"role", "assistant"}, {"content", text}}},
          {"logprobs", nullptr},
          {"finish_reason", reason_json(finish_reason)}};
}

json chat_delta_choice(size_t index, const json& delta, const std::string& finish_reason) {
  return {{"index", index}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", reason_json(finish_reason)}};
}

json response_envelope(const std::string& id, const char* object, const std::string& model, json choices) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {{"id", id},
          {"object", object},
          {"created", std::chrono::duration_cast<std::chrono::seconds>(now).count()},
          {"model", model},
          {"choices", std::move(choices)}};
}

}  // namespace arwkv
