// Running the arwkv program from tests: its exit status and everything it printed.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace arwkv::test {

// ctest runs tests as separate processes at once: temporary paths carry the process id.
// The id goes before the extension, which some readers look at.
inline std::filesystem::path temp_file(const std::string& name) {
  const std::filesystem::path p(name);
  return std::filesystem::temp_directory_path() /
         (p.stem().string() + "_" + std::to_string(getpid()) + p.extension().string());
}

struct CliRun {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs `arwkv ARGS` with stdin_text as its standard input (empty: /dev/null).
inline CliRun run_arwkv(const std::string& args, const std::string& stdin_text = "") {
  std::string cmd = arwkv_bin() + " " + args + " 2>&1";
  std::filesystem::path in;
  if (!stdin_text.empty()) {
    in = temp_file("arwkv_stdin.txt");
    std::ofstream(in) << stdin_text;
    cmd += " < " + in.string();
  } else {
    cmd += " < /dev/null";
  }
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (!in.empty()) std::filesystem::remove(in);
  return r;
}

// A path in the repository (tests/data is two levels below its root).
inline std::string repo_file(const std::string& rel) {
  return std::filesystem::weakly_canonical(std::filesystem::path(data_path("")) / "../.." / rel).string();
}

// The records of a metrics.jsonl file, in order.
inline std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace arwkv::test
