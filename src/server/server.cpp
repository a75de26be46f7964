#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "server/api.h"

namespace arwkv {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

std::string next_id(const char* prefix) {
  static std::atomic<uint64_t> n{0};
  return fmt::format("{}-{}", prefix, ++n);
}

bool send_event(httplib::DataSink& sink, const std::string& data) {
  const std::string event = "data: " + data + "\n\n";
  return sink.write(event.data(), event.size());
}

using Sequences = std::vector<std::shared_ptr<Sequence>>;

// Waits for every sequence and answers with one JSON body.
void respond_whole(const ApiRequest& req, const Sequences& seqs, const std::string& model, httplib::Response& res) {
  json choices = json::array();
  Usage usage;
  for (size_t i = 0; i < seqs.size(); ++i) {
    SequenceOutput out;
    while (seqs[i]->wait(out)) {
    }
    if (!seqs[i]->error().empty())
      return send_json(res, 500, error_body(seqs[i]->error(), "server_error", "generation_failed"));
    usage.prompt_tokens += seqs[i]->prompt_tokens();
    usage.completion_tokens += seqs[i]->completion_tokens();
    usage.cached_tokens += seqs[i]->cached_tokens();
    const std::string& reason = seqs[i]->finish_reason();
    choices.push_back(req.chat ? chat_choice(i, out.text, reason)
                               : completion_choice(i, out, reason, req.sequences[i].logprobs >= 0));
  }
  json body = response_envelope(next_id(req.chat ? "chatcmpl" : "cmpl"), req.chat ? "chat.completion" : "text_completion",
                                model, std::move(choices));
  body["usage"] = usage_json(usage);
  send_json(res, 200, body);
}

// Streams every sequence's chunks in turn as server-sent events; false when the client went away.
bool stream_all(const ApiRequest& req, const Sequences& seqs, const std::string& model, httplib::DataSink& sink) {
  const std::string id = next_id(req.chat ? "chatcmpl" : "cmpl");
  const char* object = req.chat ? "chat.completion.chunk" : "text_completion";
  auto chunk = [&](json choice) { return send_event(sink, dump(response_envelope(id, object, model, json::array({choice})))); };
  Usage usage;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const bool with_logprobs = req.sequences[i].logprobs >= 0;
    if (req.chat && !chunk(chat_delta_choice(i, {{"role", "assistant"}, {"content", ""}}, ""))) return false;
    bool more = true;
    while (more) {
      SequenceOutput out;
      more = seqs[i]->wait(out);
      if (out.text.empty() && out.tokens.empty()) continue;
      json c = req.chat ? chat_delta_choice(i, {{"content", out.text}}, "") : completion_choice(i, out, "", with_logprobs);
      if (!chunk(c)) return false;
    }
    if (!seqs[i]->error().empty())
      return send_event(sink, dump(error_body(seqs[i]->error(), "server_error", "generation_failed"))) &&
             send_event(sink, "[DONE]");
    const std::string& reason = seqs[i]->finish_reason();
    json last = req.chat ? chat_delta_choice(i, json::object(), reason) : completion_choice(i, {}, reason, false);
    if (!chunk(last)) return false;
    usage.prompt_tokens += seqs[i]->prompt_tokens();
    usage.completion_tokens += seqs[i]->completion_tokens();
    usage.cached_tokens += seqs[i]->cached_tokens();
  }
  if (req.include_usage) {
    json u = response_envelope(id, object, model, json::array());
    u["usage"] = usage_json(usage);
    if (!send_event(sink, dump(u))) return false;
  }
  return send_event(sink, "[DONE]");
}

json metrics_json(const SchedulerMetrics& s) {
  return {{"requests", {{"submitted", s.submitted}, {"rejected", s.rejected}, {"completed", s.completed},
                        {"failed", s.failed}, {"cancelled", s.cancelled}, {"active", s.active}, {"queued", s.queued}}},
          {"tokens", {{"prompt", s.prompt_tokens}, {"prefilled", s.prefilled_tokens}, {"generated", s.generated_tokens}}},
          {"prefix_cache", {{"lookups", s.cache.lookups}, {"hits", s.cache.hits}, {"hit_tokens", s.cache.hit_tokens},
                            {"inserts", s.cache.inserts}, {"evictions", s.cache.evictions},
                            {"entries", s.cache.entries}, {"bytes", s.cache.bytes}}}};
}

}  // namespace

HttpServer::HttpServer(const LoadedModel& model, const std::string& model_path, const ServerOptions& opt)
    : m_(model), opt_(opt), path_(model_path) {
  id_ = opt.model_id.empty() ? std::filesystem::path(model_path).filename().replace_extension().string() : opt.model_id;
  if (id_.empty()) id_ = std::filesystem::path(model_path).parent_path().filename().string();
  scheduler_ = std::make_unique<Scheduler>(model, opt.scheduler);
  http_ = std::make_unique<httplib::Server>();
  // One worker per connection: a connection holds its worker while it is open, so slow or idle
  // clients must not be able to take every worker (with a pool the size of the scheduler's queue,
  // 200 half-sent requests kept a normal one waiting for the read timeout). Enough workers, at least,
  // that every admissible request reaches the scheduler's queue (and the rest get 429). Reads that
  // stall past read_timeout_s and idle keep-alive connections past keep_alive_s are closed.
  const size_t workers = static_cast<size_t>(
      std::max(opt.max_connections, opt.scheduler.parallel + opt.scheduler.max_queue + 4));
  http_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http_->set_payload_max_length(opt.max_body);
  http_->set_read_timeout(opt.read_timeout_s);
  http_->set_write_timeout(600);
  http_->set_keep_alive_timeout(opt.keep_alive_s);
  http_->set_keep_alive_max_count(1000);

  auto api = std::make_shared<ApiModel>(ApiModel{m_, id_, path_, opt.scheduler.ctx});
  auto generate = [this, api](bool chat) {
    return [this, api, chat](const httplib::Request& rq, httplib::Response& res) {
      ApiRequest req;
      Sequences seqs;
      try {
        req = chat ? parse_chat_request(*api, rq.body) : parse_completion_request(*api, rq.body);
        seqs = scheduler_->submit(req.sequences);
      } catch (const ApiError& e) {
        return send_json(res, e.status, error_body(e.what(), e.type, e.code));
      } catch (const QueueFull& e) {
        res.set_header("Retry-After", "1");
        return send_json(res, 429, error_body(e.what(), "server_busy", "queue_full"));
      }
      if (!req.stream) return respond_whole(req, seqs, id_, res);
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [req, seqs, id = id_](size_t, httplib::DataSink& sink) {
            if (!stream_all(req, seqs, id, sink)) return false;
            sink.done();
            return true;
          },
          [seqs](bool) {
            for (const auto& s : seqs) s->cancel();
          });
    };
  };
  http_->Post("/v1/completions", generate(false));
  http_->Post("/v1/chat/completions", generate(true));
  http_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json model = {{"id", id_}, {"object", "model"}, {"created", 0}, {"owned_by", "arwkv"},
                  {"meta", {{"n_ctx", opt_.scheduler.ctx}, {"student", m_.is_student()}}}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
  });
  add_tokenizer_routes();
  auto metrics = [this](const httplib::Request&, httplib::Response& res) {
    json j = metrics_json(scheduler_->metrics());
    j["status"] = "ok";
    send_json(res, 200, j);
  };
  http_->Get("/health", metrics);
  http_->Get("/metrics", metrics);
  http_->set_error_handler(httplib::Server::HandlerWithResponse([max_body = opt.max_body](const httplib::Request& rq,
                                                                                          httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
    std::string what, code = "bad_request";
    switch (res.status) {
      case 404:
        what = fmt::format("no route for {} {}", rq.method, rq.path), code = "not_found";
        break;
      case 413:
        what = fmt::format("the request body is larger than this server accepts ({} bytes)", max_body);
        code = "payload_too_large";
        break;
      case 414:
        what = "the request line is too long", code = "uri_too_long";
        break;
      default:
        what = fmt::format("HTTP status {} for {} {}", res.status, rq.method, rq.path);
    }
    send_json(res, res.status, error_body(what, "invalid_request_error", code));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body(what, "server_error", "internal_error"));
  });
}

// The tokenizer endpoints of vLLM and llama.cpp servers, which lm-eval's remote tokenizer uses.
void HttpServer::add_tokenizer_routes() {
  http_->Get("/tokenizer_info", [this](const httplib::Request&, httplib::Response& res) {
    const Tokenizer& tok = *m_.tokenizer;
    auto text = [&](int32_t id) { return id >= 0 && id < tok.vocab_size() ? json(tok.token_text(id)) : json(nullptr); };
    const TokenizerData& d = tok.data();
    const int32_t eos = d.eos_id >= 0 ? d.eos_id : (m_.stop_ids().empty() ? -1 : m_.stop_ids()[0]);
    send_json(res, 200, {{"eos_token", text(eos)}, {"bos_token", text(d.bos_id)}, {"pad_token", text(d.pad_id)},
                         {"chat_template", d.chat_template}, {"vocab_size", tok.vocab_size()}});
  });
  http_->Post("/tokenize", [this](const httplib::Request& rq, httplib::Response& res) {
    const json j = json::parse(rq.body, nullptr, false);
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      return send_json(res, 400, error_body("/tokenize takes {\"prompt\": string}", "invalid_request_error", "invalid_type"));
    send_json(res, 200, {{"tokens", m_.tokenizer->encode(j["prompt"].get<std::string>())}});
  });
  http_->Post("/detokenize", [this](const httplib::Request& rq, httplib::Response& res) {
    const json j = json::parse(rq.body, nullptr, false);
    std::vector<int32_t> ids;
    bool ok = j.is_object() && j.contains("tokens") && j["tokens"].is_array();
    for (const json& t : ok ? j["tokens"] : json::array()) {
      ok = ok && t.is_number_integer() && t.get<int64_t>() >= 0 && t.get<int64_t>() < m_.tokenizer->vocab_size();
      if (ok) ids.push_back(t.get<int32_t>());
    }
    if (!ok) return send_json(res, 400, error_body("/detokenize takes {\"tokens\": [token ids]}", "invalid_request_error", "invalid_type"));
    send_json(res, 200, {{"prompt", m_.tokenizer->decode(ids)}});
  });
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const int port = opt_.port == 0 ? http_->bind_to_any_port(opt_.host) : (http_->bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
  if (port < 0) fail("serve: cannot listen on {}:{}", opt_.host, opt_.port);
  return port;
}

void HttpServer::listen() { http_->listen_after_bind(); }

void HttpServer::stop() { http_->stop(); }

}  // namespace arwkv
