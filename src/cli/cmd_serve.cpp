// arwkv serve: the OpenAI-compatible HTTP server over one model. SIGINT and SIGTERM stop it.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "infer/loaded_model.h"
#include "server/server.h"

namespace arwkv::cli {

namespace {

struct ServeOptions {
  std::string model, backend = "cpu";
  ServerOptions server;
};

void run_serve(const ServeOptions& o) {
  // Block the stop signals in every thread; one thread waits for them and stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  LoadedModel m = LoadedModel::open(o.model, o.backend);
  HttpServer server(m, o.model, o.server);
  const int port = server.bind();
  fmt::print("arwkv serve: {} on http://{}:{} (parallel {}, queue {}, context {})\n", server.model_id(),
             o.server.host, port, o.server.scheduler.parallel, o.server.scheduler.max_queue, o.server.scheduler.ctx);
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
  });
  server.listen();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter when listening ended otherwise
  waiter.join();
}

}  // namespace

void add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  SchedulerOptions& s = o->server.scheduler;
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model, "Teacher (HF directory, .safetensors, .gguf) or student directory")->required();
  cmd->add_option("--backend", o->backend, "Where to run: cpu or cuda")->capture_default_str();
  cmd->add_option("--host", o->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->server.port, "Port to listen on; 0 = any free port (printed)")->capture_default_str();
  cmd->add_option("--alias", o->server.model_id, "Model name clients use (default: the model file's name)");
  cmd->add_option("--parallel", s.parallel, "Sequences decoded in turn")->capture_default_str();
  cmd->add_option("--max-queue", s.max_queue, "Sequences waiting beyond those; more get 429")->capture_default_str();
  cmd->add_option("--ctx", s.ctx, "Most tokens (prompt + completion) per sequence")->capture_default_str();
  cmd->add_option("--prefill-chunk", s.prefill_chunk, "Prompt tokens fed per turn")->capture_default_str();
  cmd->add_option("--cache-entries", s.cache_entries, "Prefix cache: most states kept")->capture_default_str();
  cmd->add_option("--cache-mb", s.cache_bytes, "Prefix cache: most bytes kept")
      ->transform([](std::string v) { return std::to_string(std::stoull(v) << 20); });
  cmd->add_option("--max-connections", o->server.max_connections, "Connections served at once (one thread each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--read-timeout", o->server.read_timeout_s, "Seconds a client may send nothing before it is dropped")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--keep-alive", o->server.keep_alive_s, "Seconds an idle keep-alive connection stays open")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-body", o->server.max_body, "Most bytes of a request body; larger ones get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace arwkv::cli
