// arwkv data: tokenize a corpus into a training-data directory; arwkv chatgen: make chat data by
// letting a model (the instruct teacher) answer a file of prompts; arwkv pairs: preference data for
// the dpo stage from such chats and a student's own replies.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "data/corpus_reader.h"
#include "data/data_writer.h"
#include "data/tokenize_doc.h"
#include "formats/file_util.h"
#include "infer/generate.h"
#include "infer/loaded_model.h"
#include "tokenizer/chat.h"

namespace arwkv::cli {

namespace {

struct DataCli {
  std::string tokenizer;
  DataOptions opt;
};

void print_split(const char* name, const DataSplitInfo& s) {
  fmt::print("{:<6} {:>9} documents {:>12} tokens  ({} chat documents, {} shards)\n", name, s.n_documents,
             s.n_tokens, s.n_chat_documents, s.shards.size());
}

void run_data(DataCli& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::unique_ptr<Tokenizer> tok = open_tokenizer(o.tokenizer);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bool reported = false;
  o.opt.progress = [&reported](const DataProgress& p) {
    std::fprintf(stderr, "\rdata: %lld documents, %lld tokens, %.1f MB read   ", static_cast<long long>(p.documents),
                 static_cast<long long>(p.tokens), p.bytes / 1e6);
    std::fflush(stderr);
    reported = true;
  };
  const DataReport r = build_dataset(*tok, o.opt);
  if (reported) std::fputs("\n", stderr);
  const DataManifest& m = r.manifest;
  const int64_t tokens = m.train.n_tokens + m.val.n_tokens;
  fmt::print("wrote {}\n", o.opt.out);
  print_split("train", m.train);
  print_split("val", m.val);
  fmt::print("tokenizer {} ({} tokens, {}), loaded in {:.2f} s\n", m.tokenizer.source, m.tokenizer.vocab_size,
             m.tokenizer.vocab_hash, load_s);
  fmt::print("{:.1f} MB of text, {} tokens in {:.2f} s: {:.0f} tokens/s\n", r.text_bytes / 1e6, tokens, r.seconds,
             tokens / std::max(r.seconds, 1e-9));
}

struct ChatgenCli {
  std::string model, prompts, out, system;
  int n = 256;
  int64_t limit = 0, skip = 0;
  bool keep_truncated = false;
  SamplerOptions sampler;
};

std::vector<std::string> read_prompts(const std::string& path, int64_t limit) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the prompts file", path);
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line) && (limit <= 0 || static_cast<int64_t>(prompts.size()) < limit)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);
  }
  if (prompts.empty()) fail("{}: no prompts (one per line)", path);
  return prompts;
}

// The model's reply to one conversation: its text, its tokens, and whether it ended on a stop token.
struct Reply {
  std::string text;
  std::vector<int32_t> ids;
  bool stopped = false;
};
Reply reply_to(const LoadedModel& m, const std::vector<ChatMessage>& msgs, const ChatgenCli& o, uint64_t seed,
               GenerateStats& stats) {
  const std::vector<int32_t> prompt = m.tokenizer->encode(apply_chat_template(m.tokenizer->data(), msgs, true));
  auto state = m.model->new_state(static_cast<int64_t>(prompt.size()) + o.n + 1);
  GenerateOptions g;
  g.max_new_tokens = o.n;
  g.sampler = o.sampler;
  g.sampler.seed = seed;
  g.sampler.vocab = m.tokenizer->vocab_size();
  g.stop_ids = m.stop_ids();
  IncrementalDecoder decoder(*m.tokenizer);
  Reply r;
  stats = generate(*m.model, *state, prompt, g, [&](int32_t id) {
    r.text += decoder.push(id);
    r.ids.push_back(id);
    return true;
  });
  r.text += decoder.flush();
  r.stopped = stats.stopped;
  return r;
}

// Each prompt's reply is sampled with seed + its line index, so a run is reproducible prompt by
// prompt, and processes given consecutive ranges of the prompts (--skip, --limit) write the lines
// one process would, in pieces. Lines go to OUT.partial as they are made; it is renamed onto OUT at
// the end.
void run_chatgen(const ChatgenCli& o) {
  const std::vector<std::string> prompts = read_prompts(o.prompts, o.limit);
  if (o.skip >= static_cast<int64_t>(prompts.size()))
    fail("{}: --skip {} leaves none of its {} prompts{}", o.prompts, o.skip, prompts.size(),
         o.limit > 0 ? fmt::format(" (--limit {})", o.limit) : "");
  LoadedModel m = LoadedModel::open(o.model);
  const std::string partial = o.out + ".partial";
  std::FILE* f = std::fopen(partial.c_str(), "wb");
  if (!f) fail("{}: cannot create: {}", partial, std::strerror(errno));
  int64_t kept = 0, truncated = 0, new_tokens = 0;
  double seconds = 0.0;
  try {
    for (size_t i = static_cast<size_t>(o.skip); i < prompts.size(); ++i) {
      std::vector<ChatMessage> msgs;
      if (!o.system.empty()) msgs.push_back({"system", o.system});
      msgs.push_back({"user", prompts[i]});
      GenerateStats stats;
      const Reply r = reply_to(m, msgs, o, o.sampler.seed + i, stats);
      const std::string& reply = r.text;
      const bool stopped = r.stopped;
      new_tokens += stats.new_tokens;
      seconds += stats.prefill_seconds + stats.decode_seconds;
      std::fprintf(stderr, "\rchatgen: %zu / %zu prompts, %.1f tokens/s   ", i + 1, prompts.size(),
                   new_tokens / std::max(seconds, 1e-9));
      std::fflush(stderr);
      if (!stopped && !o.keep_truncated) {
        ++truncated;
        continue;
      }
      nlohmann::json messages = nlohmann::json::array();
      msgs.push_back({"assistant", reply});
      for (const ChatMessage& c : msgs) messages.push_back({{"role", c.role}, {"content", c.content}});
      const std::string line = nlohmann::json{{"messages", messages}}.dump() + "\n";
      if (std::fputs(line.c_str(), f) < 0 || std::fflush(f) != 0) fail("{}: write failed", partial);
      ++kept;
    }
    if (std::fclose(f) != 0) fail("{}: write failed", partial);
    f = nullptr;
    std::filesystem::rename(partial, o.out);
  } catch (...) {
    if (f) std::fclose(f);
    throw;
  }
  std::fputs("\n", stderr);
  fmt::print("wrote {}: {} conversations ({} replies cut off at {} tokens left out), {} tokens at {:.1f} tokens/s\n",
             o.out, kept, truncated, o.n, new_tokens, new_tokens / std::max(seconds, 1e-9));
}

struct PairsCli {
  std::string model, chat, out;
  ChatgenCli gen;  // the student's replies: n, sampler
  int64_t limit = 0;
  PairDataOptions data;
};

// The log-probability the model gives each token of ids after the ones before it (0 for the first),
// from one whole-sequence pass, softmaxes in double.
std::vector<float> token_logprobs(const LanguageModel& model, const std::vector<int32_t>& ids) {
  const HostTensor logits = model.logits(ids);
  const int64_t V = logits.shape[1];
  std::vector<float> out(ids.size(), 0.0f);
  for (size_t t = 1; t < ids.size(); ++t) {
    const float* z = logits.values.data() + static_cast<int64_t>(t - 1) * V;
    const float mx = *std::max_element(z, z + V);
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(z[v] - mx));
    out[t] = static_cast<float>(static_cast<double>(z[ids[t]] - mx) - std::log(sum));
  }
  return out;
}

// Each chat of the input (its last message the chosen reply, an assistant's) becomes a pair: the
// student answers the same conversation (sampled with seed + its index), and both whole
// conversations are scored by the student, the frozen reference of the dpo stage. The pairs are
// also written side by side, readable, as OUT/pairs.jsonl.
void run_pairs(const PairsCli& o) {
  std::vector<RawDocument> chats;
  std::vector<DataInput> inputs;
  read_corpus({o.chat}, {}, [&](RawDocument&& d) {
    if (o.limit > 0 && static_cast<int64_t>(chats.size()) >= o.limit) return;
    if (!d.is_chat()) fail("{}: not a chat (pairs reads {{\"messages\": [...]}} lines)", d.source);
    if (d.messages.back().role != "assistant" || d.messages.size() < 2)
      fail("{}: the last message is not an assistant's reply to a conversation", d.source);
    chats.push_back(std::move(d));
  }, inputs);
  if (chats.empty()) fail("{}: no chats", o.chat);
  LoadedModel m = LoadedModel::open(o.model);
  std::vector<PreferencePair> pairs;
  nlohmann::json readable = nlohmann::json::array();
  int64_t new_tokens = 0;
  double seconds = 0.0;
  for (size_t i = 0; i < chats.size(); ++i) {
    std::vector<ChatMessage> msgs = chats[i].messages;
    const std::string chosen = msgs.back().content;
    msgs.pop_back();
    GenerateStats stats;
    const Reply rejected = reply_to(m, msgs, o.gen, o.gen.sampler.seed + i, stats);
    new_tokens += stats.new_tokens;
    seconds += stats.prefill_seconds + stats.decode_seconds;
    auto chat_with = [&](const std::string& reply) {
      std::vector<ChatMessage> c = msgs;
      c.push_back({"assistant", reply});
      return tokenize_chat(*m.tokenizer, c, chats[i].source);
    };
    auto scored = [&](TokenizedDocument d) {
      std::vector<float> ref = token_logprobs(*m.model, d.ids);
      return ScoredDocument{std::move(d.ids), std::move(d.mask), std::move(ref)};
    };
    // The student's reply as the tokens it drew (decoding and encoding again need not give them
    // back): spliced into the conversation with an empty reply, before its closing <|im_end|> (the
    // one masked token), which a reply cut off by --max-tokens does not get.
    TokenizedDocument own = chat_with("");
    const auto close = static_cast<std::ptrdiff_t>(std::find(own.mask.begin(), own.mask.end(), 1) - own.mask.begin());
    if (close == static_cast<std::ptrdiff_t>(own.mask.size()))
      fail("{}: the chat template renders no closing token for an empty reply", chats[i].source);
    if (!rejected.stopped) own.ids.resize(static_cast<size_t>(close)), own.mask.resize(static_cast<size_t>(close));
    own.ids.insert(own.ids.begin() + close, rejected.ids.begin(), rejected.ids.end());
    own.mask.insert(own.mask.begin() + close, rejected.ids.size(), 1);
    PreferencePair p{scored(chat_with(chosen)), scored(std::move(own))};
    auto reply_logp = [](const ScoredDocument& d) {
      double s = 0.0;
      for (size_t t = 1; t < d.ids.size(); ++t) s += d.mask[t] ? d.ref[t] : 0.0;
      return s;
    };
    readable.push_back({{"prompt", msgs.back().content}, {"chosen", chosen}, {"rejected", rejected.text},
                        {"ref_logp_chosen", reply_logp(p.chosen)}, {"ref_logp_rejected", reply_logp(p.rejected)}});
    pairs.push_back(std::move(p));
    std::fprintf(stderr, "\rpairs: %zu / %zu chats, %.1f tokens/s   ", i + 1, chats.size(),
                 new_tokens / std::max(seconds, 1e-9));
    std::fflush(stderr);
  }
  std::fputs("\n", stderr);
  PairDataOptions d = o.data;
  d.out = o.out;
  d.input = {o.chat, "jsonl", 1, 0, 0};
  const DataReport r = write_pair_dataset(*m.tokenizer, pairs, d);
  std::string text;
  for (const nlohmann::json& j : readable) text += j.dump() + "\n";
  write_file_atomically((std::filesystem::path(o.out) / "pairs.jsonl").string(),
                        [&](std::FILE* f) { std::fputs(text.c_str(), f); });
  fmt::print("wrote {}: {} pairs ({} for validation), {} tokens; the student's replies: {} tokens at {:.1f} tokens/s\n",
             o.out, pairs.size(), r.manifest.val.n_documents / 2, r.manifest.train.n_tokens + r.manifest.val.n_tokens,
             new_tokens, new_tokens / std::max(seconds, 1e-9));
}

}  // namespace

void add_pairs(CLI::App& app) {
  auto o = std::make_shared<PairsCli>();
  o->gen.n = 128;
  CLI::App* cmd = app.add_subcommand(
      "pairs", "Preference data for a dpo stage: chosen = a chat's last reply, rejected = the student's own");
  cmd->add_option("-m,--model", o->model, "The student: writes the rejected replies and scores both (the reference)")
      ->required();
  cmd->add_option("--chat", o->chat, "Chat JSONL whose last messages are the chosen replies (arwkv chatgen)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Output data directory")->required();
  cmd->add_option("-n,--max-tokens", o->gen.n, "Most tokens per student reply")->capture_default_str();
  cmd->add_option("--limit", o->limit, "Use at most this many chats (0: all)")->capture_default_str();
  cmd->add_option("--temperature", o->gen.sampler.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->gen.sampler.top_k, "Sample among the k most likely tokens; 0 = all")->capture_default_str();
  cmd->add_option("--top-p", o->gen.sampler.top_p, "Nucleus: smallest set with this probability mass")->capture_default_str();
  cmd->add_option("--seed", o->gen.sampler.seed, "Random seed (chat i uses seed + i), also of the validation split")
      ->capture_default_str();
  add_penalty_options(cmd, o->gen.sampler);
  cmd->add_option("--val-fraction", o->data.val_fraction, "Fraction of the pairs held out for validation")
      ->capture_default_str();
  cmd->add_flag("--force", o->data.force, "Replace an existing output directory");
  cmd->callback([o] {
    o->data.seed = o->gen.sampler.seed;
    run_pairs(*o);
  });
}

void add_data(CLI::App& app) {
  auto o = std::make_shared<DataCli>();
  CLI::App* cmd = app.add_subcommand("data", "Tokenize a corpus into training data (shards, train/val split)");
  cmd->add_option("--tokenizer", o->tokenizer, "Model whose tokenizer to use (.gguf, HF/student directory, tokenizer.json)")
      ->required();
  cmd->add_option("--out", o->opt.out, "Output data directory")->required();
  cmd->add_option("inputs", o->opt.inputs, "Text files, directories, .jsonl files (text or chat messages); .gz too")
      ->required();
  cmd->add_option("--val-fraction", o->opt.val_fraction, "Fraction of the documents held out for validation")
      ->capture_default_str();
  cmd->add_option("--seed", o->opt.seed, "Seed of the train/validation split")->capture_default_str();
  cmd->add_option("--shard-tokens", o->opt.shard_tokens, "Tokens per shard file")->capture_default_str();
  cmd->add_option("--threads", o->opt.threads, "Tokenizing threads (0: all cores)")->capture_default_str();
  cmd->add_flag("--split-paragraphs", o->opt.split_paragraphs, "Each blank-line-separated block of a text file is a document");
  cmd->add_flag("--force", o->opt.force, "Replace an existing output directory");
  cmd->callback([o] { run_data(*o); });
}

void add_chatgen(CLI::App& app) {
  auto o = std::make_shared<ChatgenCli>();
  CLI::App* cmd = app.add_subcommand("chatgen", "Chat data: a model's replies to prompts, as chat JSONL");
  cmd->add_option("-m,--model", o->model, "The (instruct) model that answers")->required();
  cmd->add_option("--prompts", o->prompts, "One user prompt per line")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Output .jsonl file ({\"messages\": [...]} per line)")->required();
  cmd->add_option("-n,--max-tokens", o->n, "Most tokens per reply")->capture_default_str();
  cmd->add_option("--limit", o->limit, "Answer at most this many prompts (0: all)")->capture_default_str();
  cmd->add_option("--skip", o->skip, "Leave out the first this many of them (a range for one of several processes)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", o->sampler.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampler.top_k, "Sample among the k most likely tokens; 0 = all")->capture_default_str();
  cmd->add_option("--top-p", o->sampler.top_p, "Nucleus: smallest set with this probability mass")->capture_default_str();
  cmd->add_option("--seed", o->sampler.seed, "Random seed (prompt i uses seed + i)")->capture_default_str();
  add_penalty_options(cmd, o->sampler);
  cmd->add_option("--system", o->system, "System prompt (default: the model's own)");
  cmd->add_flag("--keep-truncated", o->keep_truncated, "Keep replies cut off by --max-tokens (default: leave them out)");
  cmd->callback([o] { run_chatgen(*o); });
}

}  // namespace arwkv::cli
