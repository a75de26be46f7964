// The arwkv program end to end: exit codes and messages for bad input, and the real teacher
// answering through generate and chat.
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "formats/safetensors.h"

namespace fs = std::filesystem;
using arwkv::test::CliRun;
using arwkv::test::model_path;
using arwkv::test::temp_file;

namespace {

CliRun run(const std::string& args, const std::string& stdin_text = "") { return arwkv::test::run_arwkv(args, stdin_text); }

const std::string kTeacher = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");

}  // namespace

TEST(Cli, MissingModelFileIsAnErrorNamingIt) {
  CliRun r = run("info /nonexistent/model.gguf");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/nonexistent/model.gguf"), std::string::npos) << r.output;
}

TEST(Cli, TruncatedGgufIsAnErrorNamingIt) {
  ARWKV_REQUIRE_FILE(kTeacher);
  fs::path cut = temp_file("arwkv_truncated.gguf");
  {
    std::ifstream in(kTeacher, std::ios::binary);
    std::string head(1 << 20, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(cut, std::ios::binary) << head;
  }
  CliRun r = run("generate -m " + cut.string() + " -p hi -n 2");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(cut.string()), std::string::npos) << r.output;
  fs::remove(cut);
}

TEST(Cli, BadOptionsAreRejected) {
  ARWKV_REQUIRE_FILE(kTeacher);
  EXPECT_NE(run("generate -m " + kTeacher).status, 0);  // no prompt
  CliRun r = run("generate -m " + kTeacher + " -p hi --top-p 0");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("top-p"), std::string::npos) << r.output;
}

TEST(Cli, InfoDescribesTheTeacher) {
  ARWKV_REQUIRE_FILE(kTeacher);
  CliRun r = run("info " + kTeacher);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("architecture llama"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("layers       30"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("SmolLM"), std::string::npos) << r.output;
}

TEST(Cli, GreedyGenerateNamesParis) {
  ARWKV_REQUIRE_FILE(kTeacher);
  CliRun r = run("generate -m " + kTeacher + " -p \"The capital of France is\" -n 8 --temperature 0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Paris"), std::string::npos) << r.output;
}

TEST(Cli, ChatReadsTurnsFromAPipe) {
  ARWKV_REQUIRE_FILE(kTeacher);
  CliRun r = run("chat -m " + kTeacher + " -n 24 --temperature 0",
              "What is the capital of France?\nAnd of Italy?\n");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Paris"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Rome"), std::string::npos) << r.output;
}

TEST(Cli, SameSeedSameText) {
  ARWKV_REQUIRE_FILE(kTeacher);
  std::string args = "generate -m " + kTeacher + " -p \"Once upon a time\" -n 12 --temperature 0.9 --seed 7 -q";
  CliRun a = run(args), b = run(args);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
}

TEST(Cli, RestoredStateContinuesExactly) {
  ARWKV_REQUIRE_FILE(kTeacher);
  const std::string st = temp_file("arwkv_cli_state.st").string();
  const std::string base = "generate -m " + kTeacher + " --temperature 0 -q";
  CliRun whole = run(base + " -p \"Once upon a time\" -n 12");
  CliRun first = run(base + " -p \"Once upon a time\" -n 6 --state-out " + st);
  CliRun rest = run(base + " -n 6 --state-in " + st);
  ASSERT_EQ(whole.status, 0) << whole.output;
  ASSERT_EQ(first.status, 0) << first.output;
  ASSERT_EQ(rest.status, 0) << rest.output;
  // Each run ends its text with a newline; the two halves joined are the whole.
  EXPECT_EQ(first.output.substr(0, first.output.size() - 1) + rest.output.substr(0, rest.output.size() - 1) + "\n",
            whole.output);

  // A corrupted state file is refused, naming it.
  {
    std::fstream f(st, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
  }
  CliRun bad = run(base + " -n 2 --state-in " + st);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find(st), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("checksum"), std::string::npos) << bad.output;
  fs::remove(st);
}

// A student whose weights hold a NaN (one value of one norm): loading refuses it, naming the file,
// the tensor and the count; --allow-nonfinite loads it with a warning, and generation then stops
// with an error at the first non-finite logits instead of printing tokens.
TEST(Cli, NonFiniteWeightsAreRefusedAndNonFiniteLogitsStopGeneration) {
  const fs::path dir = temp_file("arwkv_nan_student");
  fs::remove_all(dir);
  const std::string tiny = arwkv::test::data_path("teacher/qwen2_tiny/model-f32.gguf");
  ASSERT_EQ(run("convert --teacher " + tiny + " --out " + dir.string()).status, 0);
  const std::string file = (dir / "model.safetensors").string();
  const std::string bad = "model.layers.1.post_attention_layernorm.weight";
  {
    const auto in = arwkv::SafetensorsFile::open(file);
    ASSERT_NE(in->find(bad), nullptr) << "no tensor " << bad;
    arwkv::SafetensorsWriter w;
    for (const auto& [k, v] : in->metadata()) w.set_metadata(k, v);
    for (const arwkv::SafetensorsEntry& e : in->tensors()) {
      arwkv::HostTensor t = in->load(e.name);
      if (e.name == bad) t.values[3] = std::numeric_limits<float>::quiet_NaN();
      w.add(e.name, t);
    }
    w.write(file + ".tmp");
  }
  fs::rename(file + ".tmp", file);

  CliRun r = run("generate -m " + dir.string() + " -p hello -n 4 --temperature 0");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(dir.string() + ": tensor " + bad + " holds 1 non-finite value"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--allow-nonfinite"), std::string::npos) << r.output;

  r = run("generate -m " + dir.string() + " -p hello -n 4 --temperature 0 --allow-nonfinite");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("warning: " + dir.string() + ": tensor " + bad), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("logits are not finite"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

TEST(Cli, EvalByPositionPrintsWritesAndDrawsTheBuckets) {
  ARWKV_REQUIRE_FILE(kTeacher);
  const fs::path text = temp_file("arwkv_eval_text.txt"), js = temp_file("arwkv_eval.json"),
                 png = temp_file("arwkv_eval.png");
  {
    std::ofstream out(text);
    for (int i = 0; i < 20; ++i) out << "The quick brown fox jumps over the lazy dog. It was a sunny day in May.\n";
  }
  CliRun r = run("eval -m " + kTeacher + " --teacher " + kTeacher + " --text " + text.string() +
                 " --window 32 --max-tokens 62 --by-position --plot " + png.string() + " --json " + js.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("16-31"), std::string::npos) << r.output;
  std::ifstream in(js);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["by_position"].size(), 5u) << j.dump();  // 1, 2-3, ..., 16-31
  int64_t tokens = 0;
  for (const auto& b : j["by_position"]) {
    tokens += b["tokens"].get<int64_t>();
    EXPECT_NEAR(b["kl"].get<double>(), 0.0, 1e-9);  // the teacher against itself
    EXPECT_DOUBLE_EQ(b["nll"].get<double>(), b["teacher_nll"].get<double>());
  }
  EXPECT_EQ(tokens, j["tokens"].get<int64_t>());
  // Repeated text: the loss with 16-31 tokens of context is far below the loss with one.
  EXPECT_LT(j["by_position"][4]["nll"].get<double>(), j["by_position"][0]["nll"].get<double>() - 1.0) << j.dump();
  EXPECT_GT(fs::file_size(png), 1000u);
  for (const fs::path& p : {text, js, png}) fs::remove(p);
}
