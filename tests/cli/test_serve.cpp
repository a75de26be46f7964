// arwkv serve end to end against the real teacher: the program is started on a free loopback
// port and spoken to over HTTP. Greedy completions equal `arwkv generate`, streamed chunks add up
// to the whole text, echoed prompt log-probabilities equal the log-softmax of the model's own
// logits, stop strings cut, bad requests get 4xx without harming the server, concurrent requests
// give their sequential results, a full queue answers 429, and a shared system prompt is served
// from the prefix cache with the same output as a cold run; 200 half-sent requests do not stall a
// normal one and are dropped after the read timeout; a body over the limit gets 413.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <future>
#include <string>
#include <thread>

#include "cli_util.h"
#include "infer/loaded_model.h"
#include "test_serve_util.h"

using arwkv::test::post;
using arwkv::test::Reply;
using arwkv::test::ServerProcess;
using nlohmann::json;

namespace {

const std::string kTeacher = arwkv::test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");

json completion(const std::string& prompt, int max_tokens) {
  return {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

std::string text_of(const Reply& r) { return r.body["choices"][0].value("text", std::string("<none>")); }

json chat(const std::string& system, const std::string& user, int max_tokens) {
  return {{"messages", json::array({{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0}};
}

std::string content_of(const Reply& r) { return r.body["choices"][0]["message"].value("content", std::string("<none>")); }

class Serve : public ::testing::Test {
 protected:
  void SetUp() override { ARWKV_REQUIRE_FILE(kTeacher); }
};

}  // namespace

TEST_F(Serve, ModelsListsTheServedModel) {
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  json j = arwkv::test::get(s, "/v1/models");
  ASSERT_TRUE(j.contains("data")) << j.dump();
  EXPECT_EQ(j["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
}

TEST_F(Serve, GreedyCompletionEqualsGenerate) {
  const std::string prompt = "The capital of France is";
  auto cli = arwkv::test::run_arwkv("generate -m " + kTeacher + " -p \"" + prompt + "\" -n 12 --temperature 0 -q");
  ASSERT_EQ(cli.status, 0) << cli.output;
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  Reply r = post(s, "/v1/completions", completion(prompt, 12));
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(prompt + text_of(r) + "\n", cli.output);
  EXPECT_NE(text_of(r).find("Paris"), std::string::npos) << r.raw;
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 12);
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "length");
}

TEST_F(Serve, RepetitionPenaltiesActAsInGenerate) {
  const std::string prompt = "List the numbers: 1, 1, 1, 1,";
  const std::string flags = " --repeat-penalty 1.3 --frequency-penalty 0.5 --repeat-last-n 16";
  auto cli = arwkv::test::run_arwkv("generate -m " + kTeacher + " -p \"" + prompt + "\" -n 12 --temperature 0 -q" + flags);
  ASSERT_EQ(cli.status, 0) << cli.output;
  auto plain = arwkv::test::run_arwkv("generate -m " + kTeacher + " -p \"" + prompt + "\" -n 12 --temperature 0 -q");
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_NE(cli.output, plain.output) << "the penalties changed nothing";
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  json body = completion(prompt, 12);
  body["repeat_penalty"] = 1.3;
  body["frequency_penalty"] = 0.5;
  body["repeat_last_n"] = 16;
  Reply r = post(s, "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(prompt + text_of(r) + "\n", cli.output);
}

TEST_F(Serve, StreamedChunksAddUpToTheWholeText) {
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  json req = completion("Once upon a time", 20);
  const std::string whole = text_of(post(s, "/v1/completions", req));
  req["stream"] = true;
  Reply r = post(s, "/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.raw;
  bool done = false;
  auto events = arwkv::test::sse_events(r.raw, &done);
  EXPECT_TRUE(done) << r.raw;
  ASSERT_GE(events.size(), 3u) << r.raw;
  std::string joined;
  for (const json& e : events) joined += e["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(joined, whole);
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");

  // Chat streams deltas that add up to the whole message.
  json c = chat("You are terse.", "Name a colour.", 12);
  const std::string message = content_of(post(s, "/v1/chat/completions", c));
  c["stream"] = true;
  Reply rc = post(s, "/v1/chat/completions", c);
  auto chunks = arwkv::test::sse_events(rc.raw, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 2u) << rc.raw;
  EXPECT_EQ(chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (const json& e : chunks) content += e["choices"][0]["delta"].value("content", std::string());
  EXPECT_EQ(content, message);
  EXPECT_FALSE(chunks.back()["choices"][0]["finish_reason"].is_null());
}

TEST_F(Serve, EchoedLogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  const std::string prompt = "The quick brown fox jumps over the lazy dog";
  arwkv::LoadedModel m = arwkv::LoadedModel::open(kTeacher);
  const std::vector<int32_t> ids = m.tokenizer->encode(prompt);
  arwkv::HostTensor logits = m.model->logits(ids);
  const size_t V = static_cast<size_t>(logits.shape[1]);
  auto log_softmax = [&](size_t t, int32_t id) {
    const float* row = logits.values.data() + t * V;
    double top = row[0], sum = 0.0;
    for (size_t i = 0; i < V; ++i) top = std::max<double>(top, row[i]);
    for (size_t i = 0; i < V; ++i) sum += std::exp(row[i] - top);
    return row[id] - top - std::log(sum);
  };
  auto max_log_softmax = [&](size_t t) {
    const float* row = logits.values.data() + t * V;
    return log_softmax(t, static_cast<int32_t>(std::max_element(row, row + V) - row));
  };

  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  Reply r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(text_of(r), prompt);
  const json& lp = r.body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), ids.size()) << r.raw;
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  std::string joined;
  for (size_t t = 0; t < ids.size(); ++t) {
    EXPECT_EQ(lp["text_offset"][t].get<size_t>(), joined.size());
    joined += lp["tokens"][t].get<std::string>();
    if (t == 0) continue;
    EXPECT_NEAR(lp["token_logprobs"][t].get<double>(), log_softmax(t - 1, ids[t]), 1e-4) << "token " << t;
    EXPECT_EQ(lp["top_logprobs"][t].size(), 2u);
    double best = -1e30;
    for (const auto& [tok, v] : lp["top_logprobs"][t].items()) best = std::max(best, v.get<double>());
    EXPECT_NEAR(best, max_log_softmax(t - 1), 1e-4) << "token " << t;
  }
  EXPECT_EQ(joined, prompt);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 0);

  // lm-eval's loglikelihood request: token ids, echo, logprobs 1, one new token.
  Reply e = post(s, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 1}, {"echo", true}, {"logprobs", 1}, {"temperature", 0}});
  ASSERT_EQ(e.status, 200) << e.raw;
  const json& elp = e.body["choices"][0]["logprobs"];
  ASSERT_EQ(elp["token_logprobs"].size(), ids.size() + 1);
  EXPECT_NEAR(elp["token_logprobs"][3].get<double>(), log_softmax(2, ids[3]), 1e-4);
}

TEST_F(Serve, StopStringsCutTheText) {
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  json req = completion("The capital of France is", 16);
  const std::string whole = text_of(post(s, "/v1/completions", req));
  ASSERT_GT(whole.size(), 12u);
  const std::string stop = whole.substr(6, 3);  // cut mid-text, possibly mid-token
  req["stop"] = json::array({"zzzz-never", stop});
  Reply r = post(s, "/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(text_of(r), whole.substr(0, whole.find(stop)));
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  req["stream"] = true;
  bool done = false;
  std::string joined;
  for (const json& e : arwkv::test::sse_events(post(s, "/v1/completions", req).raw, &done))
    joined += e["choices"][0]["text"].get<std::string>();
  EXPECT_TRUE(done);
  EXPECT_EQ(joined, whole.substr(0, whole.find(stop)));
}

TEST_F(Serve, BadRequestsGet4xxAndTheServerKeepsServing) {
  ServerProcess s(kTeacher, {"--ctx", "64"});
  ASSERT_GT(s.port(), 0) << s.banner();
  auto expect_error = [&](const std::string& body, int status, const std::string& code, const char* path = "/v1/completions") {
    Reply r = post(s, path, body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.raw;
    ASSERT_TRUE(r.body.contains("error")) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    EXPECT_TRUE(r.body["error"]["message"].is_string());
    EXPECT_TRUE(r.body["error"]["type"].is_string());
  };
  expect_error("{\"prompt\": \"hi\", ", 400, "invalid_json");
  expect_error("[1, 2]", 400, "invalid_json");
  expect_error(R"({"prompt": "hi", "max_tokens": "ten"})", 400, "invalid_type");
  expect_error(R"({"prompt": "hi", "temperature": -1})", 400, "invalid_value");
  expect_error(R"({"prompt": "hi", "repeat_penalty": 0.5})", 400, "invalid_value");
  expect_error(R"({"prompt": "hi", "frequency_penalty": 3})", 400, "invalid_value");
  expect_error(R"({"prompt": 5})", 400, "invalid_type");
  expect_error(R"({"prompt": [99999999]})", 400, "invalid_value");
  expect_error(R"({"max_tokens": 3})", 400, "missing_field");
  expect_error(R"({"prompt": "hi", "model": "no-such-model"})", 404, "model_not_found");
  expect_error(json{{"prompt", std::string(400, 'a') + " b c d e f g h i j k l m n o p q r s t u v w x y z"}}.dump(), 400,
               "context_length_exceeded");
  expect_error(R"({"prompt": "hi", "max_tokens": 100})", 400, "context_length_exceeded");
  expect_error(R"({"messages": "hello"})", 400, "invalid_type", "/v1/chat/completions");
  expect_error(R"({"messages": [{"role": "wizard", "content": "x"}]})", 400, "invalid_value", "/v1/chat/completions");
  Reply ok = post(s, "/v1/completions", completion("The capital of France is", 4));
  EXPECT_EQ(ok.status, 200) << ok.raw;
  EXPECT_NE(text_of(ok).find("Paris"), std::string::npos) << ok.raw;
}

// A socket to the server that has sent the start of a request and then nothing.
int half_request(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  const std::string start = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n";
  if (write(fd, start.data(), start.size()) != static_cast<ssize_t>(start.size())) return -1;
  return fd;
}

// 200 clients that send half a request and wait hold 200 connections, not the server: a normal
// completion is answered while they hang, and after the read timeout the server drops them.
TEST_F(Serve, SlowClientsDoNotStallOtherRequests) {
  ServerProcess s(kTeacher, {"--ctx", "64", "--read-timeout", "3"});
  ASSERT_GT(s.port(), 0) << s.banner();
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = half_request(s.port());
    ASSERT_GE(fd, 0) << "connection " << i;
    slow.push_back(fd);
  }
  auto c = s.client();
  c->set_read_timeout(20);  // the stall this guards against lasted the whole read timeout of every worker
  auto res = c->Post("/v1/completions", completion("The capital of France is", 4).dump(), "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200) << res->body;
  int closed = 0;
  for (const int fd : slow) {
    timeval tv{15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    while (true) {  // the server's 408 or nothing, then end of stream
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) {
        closed += n == 0 ? 1 : 0;
        break;
      }
    }
    close(fd);
  }
  EXPECT_EQ(closed, 200);
}

TEST_F(Serve, ATooLargeBodyGets413SayingSo) {
  ServerProcess s(kTeacher, {"--ctx", "64", "--max-body", "4096"});
  ASSERT_GT(s.port(), 0) << s.banner();
  Reply r = post(s, "/v1/completions", json{{"prompt", std::string(5000, 'a')}, {"max_tokens", 1}}.dump());
  EXPECT_EQ(r.status, 413) << r.raw;
  ASSERT_TRUE(r.body.contains("error")) << r.raw;
  EXPECT_EQ(r.body["error"]["code"], "payload_too_large") << r.raw;
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("4096 bytes"), std::string::npos) << r.raw;
  Reply ok = post(s, "/v1/completions", completion("The capital of France is", 4));
  EXPECT_EQ(ok.status, 200) << ok.raw;
}

TEST_F(Serve, ConcurrentRequestsGiveTheirSequentialResults) {
  ServerProcess s(kTeacher, {"--parallel", "3", "--max-queue", "16"});
  ASSERT_GT(s.port(), 0) << s.banner();
  const std::vector<std::string> prompts = {"One", "The sky is", "In 1492", "My favourite food is",
                                            "def fib(n):", "Water boils at", "The cat", "Rome was"};
  std::vector<std::string> sequential;
  for (const auto& p : prompts) sequential.push_back(text_of(post(s, "/v1/completions", completion(p, 10))));
  std::vector<std::future<Reply>> replies;
  for (const auto& p : prompts)
    replies.push_back(std::async(std::launch::async, [&s, p] { return post(s, "/v1/completions", completion(p, 10)); }));
  for (size_t i = 0; i < prompts.size(); ++i) {
    Reply r = replies[i].get();
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(text_of(r), sequential[i]) << prompts[i];
  }
  // A list of prompts gives one choice per prompt, in order.
  Reply list = post(s, "/v1/completions", json{{"prompt", {prompts[1], prompts[2]}}, {"max_tokens", 10}, {"temperature", 0}});
  ASSERT_EQ(list.status, 200) << list.raw;
  ASSERT_EQ(list.body["choices"].size(), 2u);
  EXPECT_EQ(list.body["choices"][1]["index"], 1);
  EXPECT_EQ(list.body["choices"][0]["text"], sequential[1]);
  EXPECT_EQ(list.body["choices"][1]["text"], sequential[2]);
}

TEST_F(Serve, AFullQueueAnswers429) {
  ServerProcess s(kTeacher, {"--parallel", "1", "--max-queue", "0"});
  ASSERT_GT(s.port(), 0) << s.banner();
  auto busy = std::async(std::launch::async, [&] { return post(s, "/v1/completions", completion("Count to a hundred:", 200)); });
  for (int i = 0; i < 200 && arwkv::test::get(s, "/metrics")["requests"]["active"] != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  Reply r = post(s, "/v1/completions", completion("hi", 2));
  EXPECT_EQ(r.status, 429) << r.raw;
  EXPECT_EQ(r.body["error"]["code"], "queue_full");
  EXPECT_EQ(busy.get().status, 200);
  EXPECT_EQ(post(s, "/v1/completions", completion("hi", 2)).status, 200);
}

TEST_F(Serve, ASharedSystemPromptComesFromThePrefixCacheWithTheSameOutput) {
  const std::string system = "You are a helpful assistant who answers in one short sentence about geography.";
  std::string cold;
  {
    ServerProcess s(kTeacher);
    ASSERT_GT(s.port(), 0) << s.banner();
    Reply r = post(s, "/v1/chat/completions", chat(system, "What is the capital of Italy?", 16));
    ASSERT_EQ(r.status, 200) << r.raw;
    cold = content_of(r);
    EXPECT_EQ(r.body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  }
  ServerProcess s(kTeacher);
  ASSERT_GT(s.port(), 0) << s.banner();
  ASSERT_EQ(post(s, "/v1/chat/completions", chat(system, "What is the capital of Spain?", 16)).status, 200);
  const json before = arwkv::test::get(s, "/metrics")["prefix_cache"];
  Reply warm = post(s, "/v1/chat/completions", chat(system, "What is the capital of Italy?", 16));
  ASSERT_EQ(warm.status, 200) << warm.raw;
  const json after = arwkv::test::get(s, "/metrics")["prefix_cache"];
  EXPECT_EQ(after["hits"].get<int>(), before["hits"].get<int>() + 1);
  arwkv::LoadedModel m = arwkv::LoadedModel::open(kTeacher);
  const size_t system_tokens = m.tokenizer->encode("<|im_start|>system\n" + system + "<|im_end|>\n").size();
  EXPECT_EQ(warm.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<size_t>(), system_tokens);
  EXPECT_EQ(content_of(warm), cold);
  EXPECT_NE(cold.find("Rome"), std::string::npos) << cold;
}
