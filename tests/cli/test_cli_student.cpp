// The student through the program: convert the real teacher, then generate and restore state with
// the student directory as the model. An untrained student's text is not meaningful, but it is
// deterministic, so a run split by a saved state must give exactly the tokens of a whole run.
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_util.h"

namespace fs = std::filesystem;
using arwkv::test::CliRun;
using arwkv::test::temp_file;

namespace {

CliRun run(const std::string& args, const std::string& stdin_text = "") { return arwkv::test::run_arwkv(args, stdin_text); }

class StudentCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string teacher = arwkv::test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!fs::exists(teacher)) return;
    // ctest runs each test as its own process, several at once: one directory per process.
    dir_ = temp_file("arwkv_cli_student").string();
    fs::remove_all(dir_);
    CliRun c = run("convert --teacher " + teacher + " --out " + dir_ + " --dtype bf16");
    if (c.status != 0) {
      convert_output_ = c.output;
      dir_.clear();
    }
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    ARWKV_REQUIRE_FILE(arwkv::test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf"));
    ASSERT_FALSE(dir_.empty()) << "convert failed: " << convert_output_;
  }
  static inline std::string dir_, convert_output_;
};

}  // namespace

TEST_F(StudentCli, InfoShowsTheRnnState) {
  CliRun r = run("info " + dir_);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("30 RWKV-7 time mixing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("RNN state"), std::string::npos) << r.output;
}

TEST_F(StudentCli, RestoredStateContinuesExactly) {
  const std::string st = temp_file("arwkv_cli_student.st").string();
  const std::string base = "generate -m " + dir_ + " --temperature 0 -q";
  CliRun whole = run(base + " -p \"The capital of France is\" -n 10");
  CliRun first = run(base + " -p \"The capital of France is\" -n 5 --state-out " + st);
  CliRun rest = run(base + " -n 5 --state-in " + st);
  ASSERT_EQ(whole.status, 0) << whole.output;
  ASSERT_EQ(first.status, 0) << first.output;
  ASSERT_EQ(rest.status, 0) << rest.output;
  EXPECT_EQ(first.output.substr(0, first.output.size() - 1) + rest.output.substr(0, rest.output.size() - 1) + "\n",
            whole.output);
  // The student's state file does not depend on the context length: it is the RNN state.
  EXPECT_LT(fs::file_size(st), 6u << 20);
  // A teacher's state is refused by the student.
  const std::string teacher = arwkv::test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  CliRun t = run("generate -m " + teacher + " --temperature 0 -q -p hi -n 1 --state-out " + st);
  ASSERT_EQ(t.status, 0) << t.output;
  CliRun bad = run(base + " -n 2 --state-in " + st);
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find(st), std::string::npos) << bad.output;
  fs::remove(st);
}

TEST_F(StudentCli, ChatRunsOnTheStudent) {
  CliRun r = run("chat -m " + dir_ + " -n 6 --temperature 0 -q", "Hello!\nAnd again?\n");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("user: Hello!"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("user: And again?"), std::string::npos) << r.output;
}

TEST_F(StudentCli, ExportedGgufRunsLikeTheDirectory) {
  const std::string gguf = temp_file("arwkv_cli_student.gguf").string();
  CliRun e = run("export -m " + dir_ + " --to gguf " + gguf + " --type f32");
  ASSERT_EQ(e.status, 0) << e.output;
  const std::string args = " -p \"The capital of France is\" -n 6 --temperature 0 -q";
  CliRun from_dir = run("generate -m " + dir_ + args);
  CliRun from_gguf = run("generate -m " + gguf + args);
  ASSERT_EQ(from_dir.status, 0) << from_dir.output;
  ASSERT_EQ(from_gguf.status, 0) << from_gguf.output;
  EXPECT_EQ(from_gguf.output, from_dir.output);
  fs::remove(gguf);
}
