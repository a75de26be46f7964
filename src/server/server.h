// The HTTP server: OpenAI-compatible routes (GET /v1/models, POST /v1/completions and
// /v1/chat/completions, streamed as server-sent events when asked), GET /health and /metrics, and
// the tokenizer (GET /tokenizer_info, POST /tokenize and /detokenize, as vLLM and llama.cpp have them),
// over a Scheduler that owns the model. Handlers run on the HTTP library's worker threads and only
// parse, queue and wait; bad requests get a 4xx JSON error and the server keeps serving.
#pragma once

#include <memory>
#include <string>

#include "infer/loaded_model.h"
#include "server/scheduler.h"

namespace httplib {
class Server;
}

namespace arwkv {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port
  std::string model_id;         // the name clients use; default: the model file's name
  size_t max_body = size_t{64} << 20;  // bytes of a request body; larger ones get 413
  // Connections served at once, each on its own thread: idle or slow clients hold only their own
  // (up to this many; later connections wait for a free one).
  int max_connections = 512;
  int read_timeout_s = 10;  // a client that sends nothing for this long is disconnected
  int keep_alive_s = 5;     // an idle keep-alive connection is closed after this long
  SchedulerOptions scheduler;
};

class HttpServer {
 public:
  HttpServer(const LoadedModel& model, const std::string& model_path, const ServerOptions& opt);
  ~HttpServer();
  int bind();    // binds the socket; returns the port (throws when it cannot)
  void listen();  // serves until stop()
  void stop();   // from any thread
  const std::string& model_id() const { return id_; }

 private:
  void add_tokenizer_routes();
  const LoadedModel& m_;
  ServerOptions opt_;
  std::string path_, id_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace arwkv
