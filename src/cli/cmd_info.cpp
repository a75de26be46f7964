// arwkv info MODEL: what a checkpoint holds — architecture, sizes, tensors, tokenizer, chat template.
#include <fmt/format.h>

#include <map>
#include <memory>

#include "cli/commands.h"
#include "formats/checkpoint.h"
#include "model/student/student_checkpoint.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

namespace arwkv::cli {

namespace {

struct InfoOptions {
  std::string model;
  bool list_tensors = false;
};

void print_config(const Checkpoint& ck) {
  const ModelConfig& c = ck.config();
  fmt::print("model        {}\n", ck.path());
  fmt::print("format       {}\n", ck.format());
  if (!c.name.empty()) fmt::print("name         {}\n", c.name);
  fmt::print("architecture {}\n", c.arch_name);
  fmt::print("layers       {}\n", c.n_layers);
  fmt::print("hidden       {}\n", c.hidden_size);
  fmt::print("ffn          {}\n", c.intermediate_size);
  fmt::print("heads        {} query / {} key-value, head dim {}\n", c.n_heads, c.n_kv_heads, c.head_dim);
  fmt::print("vocab        {}\n", c.vocab_size);
  fmt::print("context      {}\n", c.max_position);
  fmt::print("rope theta   {}\n", c.rope_theta);
  fmt::print("rms eps      {}\n", c.rms_eps);
  fmt::print("qkv bias     {}\n", c.attention_bias ? "yes" : "no");
  fmt::print("tied head    {}\n", c.tie_embeddings ? "yes" : "no");
}

void print_tensors(const Checkpoint& ck, bool list) {
  std::map<std::string, int> by_dtype;
  int64_t params = 0;
  for (const TensorInfo& t : ck.tensors()) {
    ++by_dtype[t.file_dtype];
    params += t.shape.numel();
  }
  std::string kinds;
  for (const auto& [dtype, n] : by_dtype) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", n, dtype);
  fmt::print("tensors      {} ({}), {:.1f} M parameters\n", ck.tensors().size(), kinds, params / 1e6);
  if (!list) return;
  for (const TensorInfo& t : ck.tensors()) fmt::print("  {:<52} {:<6} {}\n", t.name, t.file_dtype, t.shape.str());
}

void print_student(const StudentCheckpoint& ck) {
  const StudentConfig& s = ck.config();
  const ModelConfig& c = s.base;
  fmt::print("model        {}\n", ck.path());
  fmt::print("format       arwkv student (rwkv_hybrid, safetensors)\n");
  fmt::print("teacher arch {}\n", c.arch_name);
  fmt::print("layers       {} ({} RWKV-7 time mixing, {} softmax attention)\n", c.n_layers, s.wkv_layers.size(),
             c.n_layers - static_cast<int64_t>(s.wkv_layers.size()));
  fmt::print("hidden       {}\n", c.hidden_size);
  fmt::print("ffn          {}\n", c.intermediate_size);
  fmt::print("time mixing  {} heads of {}, gate {}, group norm {}\n", s.n_wkv_heads(), s.head_size,
             s.has_gate ? "yes" : "no", s.has_group_norm ? "yes" : "no");
  fmt::print("LoRA ranks   decay {}, iclr {}, value {}, gate {}\n", s.decay_lora, s.iclr_lora, s.value_lora,
             s.has_gate ? s.gate_lora : 0);
  fmt::print("vocab        {}\n", c.vocab_size);
  fmt::print("rms eps      {}\n", c.rms_eps);
  fmt::print("tied head    {}\n", c.tie_embeddings ? "yes" : "no");
  const int64_t state = static_cast<int64_t>(s.wkv_layers.size()) *
                        (s.n_wkv_heads() * s.head_size * s.head_size + c.hidden_size) * 4;
  fmt::print("RNN state    {:.2f} MB (per time-mix layer: {}x{}x{} fp32 matrices and {} shifted channels)\n",
             state / 1e6, s.n_wkv_heads(), s.head_size, s.head_size, c.hidden_size);
}

void print_tokenizer(const Tokenizer& tok) {
  const TokenizerData& d = tok.data();
  auto name = [&](int32_t id) { return id >= 0 ? fmt::format("{} {}", id, d.tokens[static_cast<size_t>(id)]) : std::string("none"); };
  fmt::print("tokenizer    byte-level BPE, {} tokens, {} merges, {} added, pre-tokenizer {}{}\n", tok.vocab_size(),
             d.merges.size(), d.added_tokens.size(), d.pre_name, d.nfc ? ", NFC" : "");
  fmt::print("bos / eos    {} / {}\n", name(d.bos_id), name(d.eos_id));
  std::string stops;
  for (int32_t id : d.stop_ids) stops += fmt::format("{}{}", stops.empty() ? "" : ", ", name(id));
  fmt::print("stop tokens  {}\n", stops.empty() ? "none" : stops);
  if (d.chat_template.empty()) {
    fmt::print("chat         no template\n");
  } else {
    std::string sys = default_system_prompt(d.chat_template);
    fmt::print("chat         template of {} chars; default system prompt: {}\n", d.chat_template.size(),
               sys.empty() ? "none" : "\"" + sys + "\"");
  }
}

}  // namespace

void add_info(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Show a model's architecture, sizes, tensors and tokenizer");
  cmd->add_option("model", opt->model, "HF directory, .safetensors file or .gguf file")->required();
  cmd->add_flag("--tensors", opt->list_tensors, "List every tensor with its stored type and shape");
  cmd->callback([opt] {
    if (is_student_checkpoint(opt->model)) {
      auto ck = StudentCheckpoint::open(opt->model);
      print_student(*ck);
      if (!ck->tokenizer_json_path().empty())
        print_tokenizer(Tokenizer(load_tokenizer_json(ck->tokenizer_json_path())));
      return;
    }
    std::unique_ptr<Checkpoint> ck = Checkpoint::open(opt->model);
    print_config(*ck);
    print_tensors(*ck, opt->list_tensors);
    print_tokenizer(*load_tokenizer(*ck));
  });
}

}  // namespace arwkv::cli
