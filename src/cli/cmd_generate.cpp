// arwkv generate and arwkv chat: stream text from a model, one prompt or a conversation on stdin.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "infer/generate.h"
#include "infer/loaded_model.h"
#include "infer/state_file.h"
#include "tokenizer/chat.h"

namespace arwkv::cli {

namespace {

struct RunOptions {
  std::string model, backend = "cpu";
  std::string prompt;
  std::string system;
  std::string state_in, state_out;
  int n = 256;
  int64_t ctx = 4096;
  bool quiet = false;
  SamplerOptions sampler;
};

}  // namespace

void add_penalty_options(CLI::App* cmd, SamplerOptions& s) {
  cmd->add_option("--repeat-penalty", s.repeat_penalty,
                  "Divide the positive logits (multiply the negative) of recently drawn tokens by this; 1 = off")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "Subtract this from the logit of every recently drawn token")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty,
                  "Subtract this times its count from the logit of a recently drawn token")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "How many of the last drawn tokens the penalties look at")
      ->capture_default_str();
}

namespace {

void add_sampling_options(CLI::App* cmd, RunOptions& o) {
  cmd->add_option("-m,--model", o.model, "HF directory, .safetensors file or .gguf file")->required();
  cmd->add_option("--backend", o.backend, "Where to run: cpu or cuda")->capture_default_str();
  cmd->add_option("-n,--max-tokens", o.n, "Most tokens to generate (per reply)")->capture_default_str();
  cmd->add_option("--temperature", o.sampler.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o.sampler.top_k, "Sample among the k most likely tokens; 0 = all")->capture_default_str();
  cmd->add_option("--top-p", o.sampler.top_p, "Nucleus: smallest set with this probability mass")->capture_default_str();
  cmd->add_option("--seed", o.sampler.seed, "Random seed")->capture_default_str();
  add_penalty_options(cmd, o.sampler);
  cmd->add_option("--ctx", o.ctx, "Context capacity in tokens (KV cache size of a Transformer)")->capture_default_str();
  cmd->add_flag("-q,--quiet", o.quiet, "Do not print speed statistics to stderr");
}

void print_stats(const GenerateStats& s, bool quiet) {
  if (quiet) return;
  std::fprintf(stderr, "[%lld prompt tokens at %.1f tok/s, %lld new tokens at %.1f tok/s]\n",
               static_cast<long long>(s.prompt_tokens), s.prefill_tokens_per_second(),
               static_cast<long long>(s.new_tokens), s.decode_tokens_per_second());
}

// Generates from prompt ids into state, streaming the text to stdout.
GenerateStats stream_reply(const LoadedModel& m, ModelState& state, const std::vector<int32_t>& prompt,
                           const RunOptions& o, std::vector<float>* logits) {
  GenerateOptions g;
  g.max_new_tokens = o.n;
  g.sampler = o.sampler;
  g.sampler.vocab = m.tokenizer->vocab_size();
  g.stop_ids = m.stop_ids();
  IncrementalDecoder decoder(*m.tokenizer);
  GenerateStats stats = generate(*m.model, state, prompt, g, [&](int32_t id) {
    std::fputs(decoder.push(id).c_str(), stdout);
    std::fflush(stdout);
    return true;
  }, logits);
  std::fputs(decoder.flush().c_str(), stdout);
  std::fflush(stdout);
  return stats;
}

// With --state-in the prompt (which may then be empty) continues a saved state; with --state-out
// the state after the last generated token is saved.
void run_generate(const RunOptions& o) {
  if (o.prompt.empty() && o.state_in.empty()) fail("generate: give a prompt (-p) or a saved state (--state-in)");
  LoadedModel m = LoadedModel::open(o.model, o.backend);
  // A prompt that starts the sequence gets BOS where the tokenizer adds it; one that continues a saved state not.
  std::vector<int32_t> prompt =
      o.state_in.empty() ? m.tokenizer->encode_start(o.prompt) : m.tokenizer->encode(o.prompt);
  const int64_t held = o.state_in.empty() ? 0 : state_file_tokens(o.state_in);
  auto state = m.model->new_state(held + static_cast<int64_t>(prompt.size()) + o.n + 1);
  std::vector<float> logits;
  if (!o.state_in.empty()) logits = load_state_file(o.state_in, *m.model, *state);
  std::fputs(o.prompt.c_str(), stdout);
  GenerateStats stats = stream_reply(m, *state, prompt, o, &logits);
  std::fputs("\n", stdout);
  if (!o.state_out.empty()) save_state_file(o.state_out, *m.model, *state, logits);
  std::fflush(stdout);
  print_stats(stats, o.quiet);
}

// Multi-turn ChatML: each stdin line is a user message. Only the new part of the conversation is
// fed to the model each turn; the state carries the rest.
void run_chat(const RunOptions& o) {
  LoadedModel m = LoadedModel::open(o.model, o.backend);
  const TokenizerData& td = m.tokenizer->data();
  const bool interactive = isatty(STDIN_FILENO);
  std::vector<ChatMessage> history;
  if (!o.system.empty()) history.push_back({"system", o.system});
  auto state = m.model->new_state(o.ctx);
  std::string fed_text;  // the rendered conversation the state has seen, up to the last turn's end
  std::string line;
  while (true) {
    if (interactive) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    history.push_back({"user", line});
    std::string full = apply_chat_template(td, history, true);
    if (full.compare(0, fed_text.size(), fed_text) != 0)
      fail("chat: the template of {} does not render a conversation as a prefix of its continuation", td.source);
    std::vector<int32_t> prompt = m.tokenizer->encode(full.substr(fed_text.size()));
    if (state->n_tokens() + static_cast<int64_t>(prompt.size()) + o.n + 2 > o.ctx)
      fail("chat: the conversation would exceed the context of {} tokens (raise --ctx)", o.ctx);
    if (!interactive) fmt::print("user: {}\nassistant: ", line), std::fflush(stdout);
    std::string reply;
    IncrementalDecoder decoder(*m.tokenizer);
    GenerateOptions g;
    g.max_new_tokens = o.n;
    g.sampler = o.sampler;
    g.sampler.vocab = m.tokenizer->vocab_size();
    g.stop_ids = m.stop_ids();
    GenerateStats stats = generate(*m.model, *state, prompt, g, [&](int32_t id) {
      std::string piece = decoder.push(id);
      reply += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::string rest = decoder.flush();
    reply += rest;
    std::fputs((rest + "\n").c_str(), stdout);
    std::fflush(stdout);
    print_stats(stats, o.quiet);
    // Close the assistant turn in the state exactly as the template renders it.
    history.push_back({"assistant", reply});
    std::string closed = apply_chat_template(td, history, false);
    std::string rendered_reply_end = closed.substr(full.size());
    std::string tail = rendered_reply_end.substr(std::min(reply.size(), rendered_reply_end.size()));
    std::vector<int32_t> close_ids = m.tokenizer->encode(tail);
    if (!close_ids.empty()) m.model->extend(*state, close_ids);
    fed_text = closed;
  }
}

}  // namespace

void add_generate(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text");
  add_sampling_options(cmd, *o);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text (may be empty with --state-in)");
  cmd->add_option("--state-in", o->state_in, "Continue from a state saved by --state-out")->check(CLI::ExistingFile);
  cmd->add_option("--state-out", o->state_out, "Save the whole model state after generating");
  cmd->callback([o] { run_generate(*o); });
}

void add_chat(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Talk to a model (ChatML); one user message per stdin line");
  add_sampling_options(cmd, *o);
  cmd->add_option("--system", o->system, "System prompt (default: the model's own)");
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace arwkv::cli
