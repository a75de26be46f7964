#include "server/scheduler.h"

#include <algorithm>
#include <optional>

#include "server/logprobs.h"

namespace arwkv {

// A sequence the scheduler works on; only the scheduler thread touches it once admitted.
struct Scheduler::Active {
  std::shared_ptr<Sequence> out;
  SequenceRequest req;
  bool started = false;
  std::unique_ptr<ModelState> state;  // null when no token is ever fed (echo scoring)
  size_t fed = 0;                     // prompt tokens in the state (or scored)
  int64_t cached = 0;                 // prompt tokens taken from the prefix cache
  std::vector<float> logits;          // after the last token fed
  std::optional<Sampler> sampler;
  std::optional<IncrementalDecoder> decoder;
  std::string text;                   // the completion so far
  size_t sent = 0;                    // bytes of text handed to out
  size_t text_base = 0;               // where the completion starts in the returned text
  std::vector<std::pair<TokenLogprob, size_t>> held;  // tokens not yet handed out, with their text end
  int generated = 0;
};

namespace {

// Length of the longest suffix of text that is a proper prefix of a stop string: text that may yet
// turn into a stop string and so is held back.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t keep = 0;
  for (const std::string& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > keep; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  return keep;
}

}  // namespace

Scheduler::Scheduler(const LoadedModel& model, const SchedulerOptions& opt)
    : m_(model), opt_(opt), cache_(*model.model, opt.cache_entries, opt.cache_bytes), stop_ids_(model.stop_ids()) {
  if (opt.parallel < 1) fail("serve: --parallel must be at least 1, got {}", opt.parallel);
  if (opt.max_queue < 0) fail("serve: --max-queue must be >= 0, got {}", opt.max_queue);
  if (opt.ctx < 2) fail("serve: --ctx must be at least 2, got {}", opt.ctx);
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& a : queue_) a->out->fail("the server is shutting down");
}

std::vector<std::shared_ptr<Sequence>> Scheduler::submit(std::vector<SequenceRequest> requests) {
  std::vector<std::shared_ptr<Sequence>> out;
  {
    std::lock_guard lock(mutex_);
    const int64_t waiting = static_cast<int64_t>(queue_.size());
    if (stop_ || waiting + static_cast<int64_t>(requests.size()) > opt_.max_queue + opt_.parallel - metrics_.active) {
      ++metrics_.rejected;
      throw QueueFull("the server is busy: its queue is full, retry later");
    }
    for (auto& r : requests) {
      ARWKV_ASSERT(!r.prompt.empty() && static_cast<int64_t>(r.prompt.size()) + r.max_tokens <= opt_.ctx,
                   "scheduler: a prompt of {} tokens", r.prompt.size());
      auto a = std::make_unique<Active>();
      a->out = std::make_shared<Sequence>();
      a->req = std::move(r);
      out.push_back(a->out);
      queue_.push_back(std::move(a));
      ++metrics_.submitted;
    }
    metrics_.queued = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return out;
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard lock(mutex_);
  return metrics_;
}

bool Scheduler::admit(std::vector<std::unique_ptr<Active>>& active) {
  std::unique_lock lock(mutex_);
  metrics_.active = static_cast<int64_t>(active.size());
  metrics_.cache = cache_.stats();
  cv_.wait(lock, [&] { return stop_ || !active.empty() || !queue_.empty(); });
  while (!stop_ && static_cast<int>(active.size()) < opt_.parallel && !queue_.empty()) {
    active.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  metrics_.active = static_cast<int64_t>(active.size());
  metrics_.queued = static_cast<int64_t>(queue_.size());
  metrics_.cache = cache_.stats();
  return !stop_;
}

void Scheduler::run() {
  std::vector<std::unique_ptr<Active>> active;
  while (true) {
    if (!admit(active)) break;
    for (auto& a : active) {
      bool ended;
      try {
        ended = step(*a);
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(mutex_);
          if (a->sampler) --metrics_.active;  // finish() had not freed the slot
          ++metrics_.failed;
        }
        a->out->fail(e.what());
        ended = true;
      }
      if (ended) a.reset();
    }
    std::erase(active, nullptr);
  }
  for (auto& a : active) a->out->fail("the server is shutting down");
}

bool Scheduler::step(Active& a) {
  if (a.out->cancelled()) {
    std::lock_guard lock(mutex_);
    ++metrics_.cancelled;
    return true;
  }
  if (!a.started) {
    start(a);
  } else if (a.fed < a.req.prompt.size()) {
    prefill(a);
  } else {
    decode(a);
  }
  return !a.sampler.has_value();  // finish() resets it
}

// Echoes the prompt when asked, then takes the longest cached prefix; with echo and log-probabilities
// and at most one new token, the prompt is scored in one pass and no state is needed.
void Scheduler::start(Active& a) {
  const SequenceRequest& r = a.req;
  a.started = true;
  SamplerOptions so = r.sampler;
  so.vocab = m_.tokenizer->vocab_size();
  a.sampler.emplace(so);
  a.decoder.emplace(*m_.tokenizer);
  const LanguageModel& model = *m_.model;
  if (r.echo) {
    const std::string prompt_text = m_.tokenizer->decode(r.prompt);
    std::vector<TokenLogprob> tokens;
    if (r.logprobs >= 0) {
      HostTensor all = model.logits(r.prompt);
      const size_t V = static_cast<size_t>(all.shape[1]);
      auto row = [&](size_t t) { return std::span<const float>(all.values.data() + t * V, V); };
      size_t offset = 0;
      for (size_t t = 0; t < r.prompt.size(); ++t) {
        TokenLogprob lp;
        if (t == 0) lp.token = m_.tokenizer->decode({r.prompt[0]});
        else lp = token_logprob(row(t - 1), r.prompt[t], r.logprobs, *m_.tokenizer);
        lp.text_offset = std::min(offset, prompt_text.size());
        offset += m_.tokenizer->token_text(r.prompt[t]).size();
        tokens.push_back(std::move(lp));
      }
      if (r.max_tokens <= 1) {
        a.logits = std::vector<float>(row(r.prompt.size() - 1).begin(), row(r.prompt.size() - 1).end());
        a.fed = r.prompt.size();
      }
    }
    a.text_base = prompt_text.size();
    a.out->emit(prompt_text, std::move(tokens));
  }
  if (r.max_tokens == 0) a.fed = r.prompt.size();  // nothing to generate: no state needed
  if (a.fed == r.prompt.size()) return;
  a.state = model.new_state(static_cast<int64_t>(r.prompt.size()) + r.max_tokens + 1);
  if (const PrefixCache::Entry* hit = cache_.lookup(r.prompt)) {
    copy_state(model, *hit->state, *a.state);
    a.fed = hit->tokens.size();
    a.cached = static_cast<int64_t>(a.fed);
    a.logits = hit->logits;
  }
}

// Feeds the next chunk of the prompt, ending at a cache point so that the state there can be kept
// (and so that a prompt is cut into the same pieces whether its prefix was cached or not).
void Scheduler::prefill(Active& a) {
  const auto& r = a.req;
  size_t end = std::min(r.prompt.size(), a.fed + static_cast<size_t>(opt_.prefill_chunk));
  for (size_t p : r.cache_points)
    if (p > a.fed && p < end) end = p;
  const std::span<const int32_t> ids(r.prompt.data() + a.fed, end - a.fed);
  a.logits = m_.model->extend(*a.state, ids);
  {
    std::lock_guard lock(mutex_);
    metrics_.prefilled_tokens += static_cast<int64_t>(ids.size());
  }
  a.fed = end;
  if (std::find(r.cache_points.begin(), r.cache_points.end(), end) != r.cache_points.end())
    cache_.insert(std::span(r.prompt.data(), end), *a.state, a.logits);
}

void Scheduler::decode(Active& a) {
  if (a.generated >= a.req.max_tokens) return finish(a, "length");
  const int32_t id = a.sampler->sample(a.logits);
  if (std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) {
    take_text(a, a.decoder->flush(), true);
    return finish(a, "stop");
  }
  ++a.generated;
  {
    std::lock_guard lock(mutex_);
    ++metrics_.generated_tokens;
  }
  if (a.req.logprobs >= 0) {
    TokenLogprob lp = token_logprob(a.logits, id, a.req.logprobs, *m_.tokenizer);
    lp.text_offset = a.text_base + a.text.size();
    a.held.emplace_back(std::move(lp), 0);
  }
  std::string piece = a.decoder->push(id);
  const bool last = a.generated >= a.req.max_tokens;
  if (last) piece += a.decoder->flush();
  if (!a.held.empty()) a.held.back().second = a.text.size() + piece.size();
  take_text(a, piece, last);
  if (!a.sampler) return;  // a stop string ended it
  if (last) return finish(a, "length");
  const int32_t next[1] = {id};
  a.logits = m_.model->extend(*a.state, next);
}

// Appends a piece of the completion and hands out what can no longer become a stop string; ends
// the sequence at the first stop string.
void Scheduler::take_text(Active& a, const std::string& piece, bool last) {
  const size_t from = a.text.size();
  a.text += piece;
  size_t cut = std::string::npos;
  for (const std::string& s : a.req.stop) {
    const size_t search_from = from >= s.size() ? from - s.size() + 1 : 0;
    const size_t at = a.text.find(s, search_from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) a.text.resize(cut);
  const size_t ready = cut != std::string::npos || last ? a.text.size() : a.text.size() - held_back(a.text, a.req.stop);
  std::vector<TokenLogprob> tokens;
  size_t n = 0;
  for (; n < a.held.size(); ++n) {
    const bool whole = a.held[n].second <= ready;
    const bool started = a.held[n].first.text_offset - a.text_base < ready;
    if (!(whole || (cut != std::string::npos && started))) break;
    tokens.push_back(std::move(a.held[n].first));
  }
  if (cut != std::string::npos) n = a.held.size();
  a.held.erase(a.held.begin(), a.held.begin() + static_cast<ptrdiff_t>(n));
  if (ready > a.sent) a.out->emit(a.text.substr(a.sent, ready - a.sent), std::move(tokens));
  else if (!tokens.empty()) a.out->emit("", std::move(tokens));
  a.sent = std::max(a.sent, ready);
  if (cut != std::string::npos) finish(a, "stop");
}

void Scheduler::finish(Active& a, const std::string& reason) {
  if (!a.sampler) return;
  a.sampler.reset();
  {
    // The slot is free before the client hears the end, so a request sent right after it is admitted.
    std::lock_guard lock(mutex_);
    --metrics_.active;
    ++metrics_.completed;
    metrics_.prompt_tokens += static_cast<int64_t>(a.req.prompt.size());
  }
  a.out->finish(reason, static_cast<int64_t>(a.req.prompt.size()), a.generated, a.cached);
}

}  // namespace arwkv
