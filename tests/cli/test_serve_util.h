// Helpers for the server tests (test_serve*.cpp): start `arwkv serve` on a free loopback port and talk to it.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace arwkv::test {

// `arwkv serve -m MODEL --port 0 ARGS...` as a child process; stopped (SIGTERM) on destruction.
class ServerProcess {
 public:
  ServerProcess(const std::string& model, const std::vector<std::string>& args = {}) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<std::string> argv = {arwkv_bin(), "serve", "-m", model, "--port", "0"};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    // The first line names the address: "arwkv serve: NAME on http://HOST:PORT (...)".
    FILE* f = fdopen(out[0], "r");
    char line[512] = {0};
    if (fgets(line, sizeof line, f)) {
      banner_ = line;
      const size_t at = banner_.find("http://127.0.0.1:");
      if (at != std::string::npos) port_ = std::stoi(banner_.substr(at + 17));
    }
    fclose(f);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }
  const std::string& banner() const { return banner_; }
  pid_t pid() const { return pid_; }

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(300);
    c->set_write_timeout(60);
    return c;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string banner_;
};

struct Reply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

inline Reply post(const ServerProcess& s, const std::string& path, const std::string& body) {
  auto c = s.client();
  Reply r;
  auto res = c->Post(path.c_str(), body, "application/json");
  if (!res) {
    r.raw = "no response: " + httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.raw = res->body;
  r.body = nlohmann::json::parse(res->body, nullptr, false);
  return r;
}

inline Reply post(const ServerProcess& s, const std::string& path, const nlohmann::json& body) {
  return post(s, path, body.dump());
}

inline nlohmann::json get(const ServerProcess& s, const std::string& path) {
  auto res = s.client()->Get(path.c_str());
  return res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
}

// The JSON events of a server-sent-event stream, up to "data: [DONE]" (done tells whether it came).
inline std::vector<nlohmann::json> sse_events(const std::string& raw, bool* done) {
  std::vector<nlohmann::json> events;
  *done = false;
  size_t at = 0;
  while (at < raw.size()) {
    const size_t end = raw.find("\n\n", at);
    if (end == std::string::npos) break;
    const std::string event = raw.substr(at, end - at);
    at = end + 2;
    if (event.rfind("data: ", 0) != 0) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      *done = true;
      break;
    }
    events.push_back(nlohmann::json::parse(data, nullptr, false));
  }
  return events;
}

}  // namespace arwkv::test
