// arwkv serve with a student (RNN) model: the real teacher converted to a student, then served.
// An untrained student's text is meaningless but deterministic: greedy completions equal
// `arwkv generate`, and a chat whose system prompt comes from the prefix cache (an RNN state
// copied through the backend) gives exactly the text of a cold run on a fresh server.
#include <filesystem>
#include <string>

#include "cli_util.h"
#include "test_serve_util.h"

namespace fs = std::filesystem;
using arwkv::test::post;
using arwkv::test::Reply;
using arwkv::test::ServerProcess;
using nlohmann::json;

namespace {

class ServeStudent : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string teacher = arwkv::test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    ARWKV_REQUIRE_FILE(teacher);
    dir_ = arwkv::test::temp_file("arwkv_serve_student").string();
    fs::remove_all(dir_);
    auto c = arwkv::test::run_arwkv("convert --teacher " + teacher + " --out " + dir_ + " --dtype bf16");
    ASSERT_EQ(c.status, 0) << c.output;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string dir_;
};

json chat(const std::string& user) {
  return {{"messages", json::array({{{"role", "system"}, {"content", "You are a helpful assistant for travellers."}},
                                    {{"role", "user"}, {"content", user}}})},
          {"max_tokens", 12},
          {"temperature", 0}};
}

std::string content_of(const Reply& r) { return r.body["choices"][0]["message"].value("content", std::string("<none>")); }

}  // namespace

TEST_F(ServeStudent, GreedyCompletionEqualsGenerate) {
  const std::string prompt = "The capital of France is";
  auto cli = arwkv::test::run_arwkv("generate -m " + dir_ + " -p \"" + prompt + "\" -n 10 --temperature 0 -q");
  ASSERT_EQ(cli.status, 0) << cli.output;
  ServerProcess s(dir_);
  ASSERT_GT(s.port(), 0) << s.banner();
  Reply r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 10}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(prompt + r.body["choices"][0]["text"].get<std::string>() + "\n", cli.output);
  EXPECT_EQ(arwkv::test::get(s, "/v1/models")["data"][0]["meta"]["student"], true);
}

TEST_F(ServeStudent, PrefixCacheHitEqualsAColdRun) {
  std::string cold;
  {
    ServerProcess s(dir_);
    ASSERT_GT(s.port(), 0) << s.banner();
    Reply r = post(s, "/v1/chat/completions", chat("Where should I go in Italy?"));
    ASSERT_EQ(r.status, 200) << r.raw;
    cold = content_of(r);
  }
  ServerProcess s(dir_);
  ASSERT_GT(s.port(), 0) << s.banner();
  ASSERT_EQ(post(s, "/v1/chat/completions", chat("Where should I go in Spain?")).status, 200);
  Reply warm = post(s, "/v1/chat/completions", chat("Where should I go in Italy?"));
  ASSERT_EQ(warm.status, 200) << warm.raw;
  EXPECT_GT(warm.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
  EXPECT_EQ(arwkv::test::get(s, "/metrics")["prefix_cache"]["hits"], 1);
  EXPECT_EQ(content_of(warm), cold);
  // The same conversation again starts from the cached state of its whole prompt.
  Reply again = post(s, "/v1/chat/completions", chat("Where should I go in Italy?"));
  EXPECT_EQ(again.body["usage"]["prompt_tokens_details"]["cached_tokens"], again.body["usage"]["prompt_tokens"]);
  EXPECT_EQ(content_of(again), cold);
}
