// arwkv plan: the memory a distillation stage needs, by component (train/plan.h), and whether it
// fits a device. From a config (every stage, the files it names read for their shapes only), or
// from a teacher file or a known model shape and the stage's settings given as options.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "convert/student_init.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "model/student/student.h"
#include "model/student/student_checkpoint.h"
#include "model/teacher/teacher_tensors.h"
#include "train/config.h"
#include "train/plan.h"
#include "train/student_backward.h"

namespace arwkv::cli {

namespace {

namespace fs = std::filesystem;

struct PlanCli {
  std::string config, teacher, shape, student, kind = "align", train = "time_mix", frozen_dtype = "stored";
  std::string teacher_dtype = "bf16", student_dtype = "f32", device_memory;
  int64_t batch = 4, seq_len = 512, top_k = 0;
  int ranks = 1, zero = -1;  // zero -1: the config's (1 without one)
  bool recompute = false, json = false, check = false;
};

// "80G", "24GiB", "512M", "1.5T" (binary units), or bytes.
uint64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    fail("--device-memory: '{}' is not a size such as 80G or 512M", s);
  }
  std::string unit = s.substr(used);
  for (const char* tail : {"iB", "B"})
    if (unit.size() > 1 && unit.ends_with(tail)) unit.resize(unit.size() - std::string(tail).size());
  const double scale = unit.empty() ? 1 : unit == "K" ? 0x1p10 : unit == "M" ? 0x1p20 : unit == "G" ? 0x1p30
                                                        : unit == "T" ? 0x1p40 : -1;
  if (scale < 0 || !(v > 0)) fail("--device-memory: '{}' is not a size such as 80G or 512M", s);
  return static_cast<uint64_t>(v * scale);
}

uint64_t mem_total() {  // this machine's memory, for the CPU backend
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

uint64_t file_bytes(const std::string& path) {  // a file, or the weight files of a directory
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return fs::file_size(path, ec);
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors" || e.path().extension() == ".gguf") n += e.file_size();
  return n;
}

std::vector<std::string> split_groups(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = std::min(s.find(',', at), s.size());
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

DType dtype_named(const std::string& name, const char* option) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K})
    if (name == dtype_name(t)) return t;
  fail("{}: unknown dtype '{}' (f32, bf16, f16, q8_0, q4_k, ...)", option, name);
}

void set_teacher(PlanInput& in, const std::string& path) {
  const std::unique_ptr<Checkpoint> ck = Checkpoint::open(path);
  in.teacher = ck->config();
  in.teacher_weight_bytes = teacher_held_bytes(ck->config(), ck.get(), DType::F32);
  in.teacher_file_bytes = file_bytes(path);
}

StudentConfig student_from_teacher(const ModelConfig& t) {
  const LoraRanks r = lora_ranks_for_size(t.hidden_size);
  return make_student_config(t, r.decay, r.iclr, r.value, r.gate);
}

void set_student_file(PlanInput& in, const std::string& path) {
  const std::unique_ptr<StudentCheckpoint> ck = StudentCheckpoint::open(path);
  in.student = ck->config();
  for (const TensorSpec& s : student_tensor_list(in.student)) in.student_stored[s.name] = ck->stored_dtype(s.name);
  in.student_file_bytes = file_bytes(fs::is_directory(path) ? path : fs::path(path).parent_path().string());
}

// A converted student that does not exist yet: stored as `dtype`, its file that size.
void set_student_shape(PlanInput& in, const StudentConfig& cfg, DType dtype) {
  in.student = cfg;
  in.student_file_bytes = 0;
  for (const TensorSpec& s : student_tensor_list(cfg)) {
    const DType dt = student_tensor_may_be_compact(s) ? dtype : DType::F32;
    in.student_stored[s.name] = dt;
    in.student_file_bytes += static_cast<uint64_t>(s.shape.numel()) * (dt == DType::F32 ? 4 : 2);
  }
}

std::string mib(uint64_t b) { return fmt::format("{:.0f}", static_cast<double>(b) / (1 << 20)); }
std::string gib(uint64_t b) { return fmt::format("{:.1f} GiB", static_cast<double>(b) / (1ull << 30)); }

// Prints one stage's plan; returns whether it fits.
bool report(const PlanInput& in, const MemoryPlan& p, const std::string& device, uint64_t memory, bool json) {
  const bool fits = memory == 0 || p.peak <= memory;
  if (json) {
    nlohmann::json j = {{"stage", in.stage}, {"kind", in.kind}, {"train", in.train}, {"batch", in.batch},
                        {"seq_len", in.seq_len}, {"recompute", in.recompute}, {"frozen_dtype", in.frozen_dtype},
                        {"peak_bytes", p.peak}, {"peak_phase", p.peak_phase}, {"phases", p.phases},
                        {"trained_parameters", p.trained_parameters}, {"device", device},
                        {"device_bytes", memory}, {"fits", fits}, {"ranks", in.ranks}, {"zero", in.zero}};
    for (const PlanItem& it : p.items) j["components"][it.component] = it.bytes;
    fmt::print("{}\n", j.dump());
    return fits;
  }
  const int64_t rank_rows = (in.batch + in.ranks - 1) / in.ranks;
  fmt::print("stage {} ({}, trains {}; {} x {} tokens{}, frozen matrices {}){}\n", in.stage, in.kind,
             fmt::join(in.kind == "align" ? std::vector<std::string>{"time_mix"} : in.train, ", "), in.batch,
             in.seq_len, in.recompute ? ", recompute" : "", in.frozen_dtype,
             in.ranks > 1 ? fmt::format(": one rank of {}, {} row{} each{}", in.ranks, rank_rows,
                                        rank_rows == 1 ? "" : "s", in.zero >= 1 ? ", optimiser sharded" : "")
                          : "");
  fmt::print("  {:<18} {:>9}  {}\n", "component", "MiB", "");
  for (const PlanItem& it : p.items) fmt::print("  {:<18} {:>9}  {}\n", it.component, mib(it.bytes), it.note);
  fmt::print("  phases:");
  for (const auto& [phase, b] : p.phases) fmt::print(" {} {} MiB", phase, mib(b));
  fmt::print("\n  peak {} ({}) on {}", gib(p.peak), p.peak_phase, device);
  if (memory)
    fmt::print(" of {}: {}\n", gib(memory),
               fits ? fmt::format("fits ({:.0f}%)", 100.0 * static_cast<double>(p.peak) / static_cast<double>(memory))
                    : fmt::format("does NOT fit: needs {}, has {}", gib(p.peak), gib(memory)));
  else
    fmt::print("\n");
  return fits;
}

void run_plan(const PlanCli& o) {
  std::vector<PlanInput> stages;
  std::string backend = "cpu";
  if (!o.config.empty()) {
    const TrainConfig cfg = load_train_config(o.config);
    backend = cfg.run.backend;
    const int zero = static_cast<int>(cfg.run.zero);
    PlanInput prev;
    for (size_t i = 0; i < cfg.stages.size(); ++i) {
      const StageConfig& st = cfg.stages[i];
      PlanInput in;
      in.stage = st.name, in.kind = st.kind, in.train = st.train, in.batch = st.batch, in.seq_len = st.seq_len;
      in.recompute = st.recompute, in.frozen_dtype = st.frozen_dtype, in.top_k = st.top_k, in.ce_weight = st.ce_weight;
      in.zero = zero;
      const std::string teacher = !st.kd_teacher.empty() ? st.kd_teacher : cfg.run.teacher;
      if ((st.kind == "align" || st.kind == "kd") && !teacher.empty()) set_teacher(in, teacher);
      if (i == 0) {
        if (fs::exists(cfg.run.student)) set_student_file(in, cfg.run.student);
        else if (in.teacher) set_student_shape(in, student_from_teacher(*in.teacher), DType::F32);
        else fail("{}: the student {} does not exist yet and no teacher gives its shape", o.config, cfg.run.student);
      } else {  // the previous stage's output: what it trained fp32, its frozen matrices as it held them
        in.student = prev.student;
        in.student_file_bytes = 0;
        const std::vector<std::string> groups = prev.kind == "align" ? std::vector<std::string>{"time_mix"} : prev.train;
        for (const TensorSpec& s : student_tensor_list(in.student)) {
          DType dt = DType::F32;
          if (student_tensor_may_be_compact(s) && !student_tensor_trains(in.student, s.name, groups))
            dt = prev.frozen_dtype == "stored" ? prev.student_stored[s.name] : dtype_named(prev.frozen_dtype, "frozen_dtype");
          in.student_stored[s.name] = dt;
          in.student_file_bytes += static_cast<uint64_t>(s.shape.numel()) * (dt == DType::F32 ? 4 : 2);
        }
      }
      stages.push_back(in);
      prev = in;
    }
  } else {
    if (o.teacher.empty() == o.shape.empty()) fail("plan: give a CONFIG, or one of --teacher and --shape");
    PlanInput in;
    in.kind = o.kind, in.train = split_groups(o.train), in.batch = o.batch, in.seq_len = o.seq_len;
    in.recompute = o.recompute, in.frozen_dtype = o.frozen_dtype, in.top_k = o.top_k, in.stage = o.kind;
    if (!o.teacher.empty()) {
      set_teacher(in, o.teacher);
    } else {
      in.teacher = known_shape(o.shape);
      in.teacher_weight_bytes = teacher_held_bytes(*in.teacher, nullptr, dtype_named(o.teacher_dtype, "--teacher-dtype"));
      in.teacher_file_bytes = in.teacher_weight_bytes;
    }
    if (!o.student.empty()) set_student_file(in, o.student);
    else set_student_shape(in, student_from_teacher(*in.teacher), dtype_named(o.student_dtype, "--student-dtype"));
    if (in.kind == "sft" || in.kind == "dpo") in.teacher.reset(), in.teacher_weight_bytes = 0;
    stages.push_back(in);
  }
  for (PlanInput& in : stages) {
    in.ranks = o.ranks;
    if (o.zero >= 0) in.zero = o.zero;
  }
  const uint64_t memory = !o.device_memory.empty() ? parse_size(o.device_memory) : backend == "cpu" ? mem_total() : 0;
  const std::string device = backend == "cpu" ? "the CPU (resident memory)" : "one " + backend + " device";
  bool all_fit = true;
  for (size_t i = 0; i < stages.size(); ++i) {
    if (i && !o.json) fmt::print("\n");
    all_fit &= report(stages[i], plan_stage(stages[i]), device, memory, o.json);
  }
  if (o.check && !all_fit) fail("plan: a stage does not fit in {}", gib(memory));
}

}  // namespace

void add_plan(CLI::App& app) {
  auto o = std::make_shared<PlanCli>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "Memory a distillation stage needs, by component, and whether it fits (shapes only, no weights read)");
  cmd->add_option("config", o->config, "A distillation config: plan each of its stages");
  cmd->add_option("--teacher", o->teacher, "Without a config: the teacher file or directory");
  cmd->add_option("--shape", o->shape, "Without a config: a known teacher shape instead of a file")
      ->check(CLI::IsMember(known_shape_names()));
  cmd->add_option("--student", o->student, "The converted student (default: the teacher converted, transfer ranks)");
  cmd->add_option("--kind", o->kind, "Stage kind")->check(CLI::IsMember({"align", "kd", "sft", "dpo"}));
  cmd->add_option("--train", o->train, "Trained groups, comma-separated (default time_mix)");
  cmd->add_option("--batch", o->batch, "Rows per micro-batch")->check(CLI::PositiveNumber);
  cmd->add_option("--seq-len", o->seq_len, "Tokens per row")->check(CLI::PositiveNumber);
  cmd->add_flag("--recompute", o->recompute, "Recompute activations in the backward");
  cmd->add_option("--frozen-dtype", o->frozen_dtype, "The student's frozen matrices: stored, f32, bf16 or f16")
      ->check(CLI::IsMember({"stored", "f32", "bf16", "f16"}));
  cmd->add_option("--teacher-dtype", o->teacher_dtype, "With --shape: the teacher's matrices (bf16, q4_k, q8_0, f32)");
  cmd->add_option("--student-dtype", o->student_dtype, "Without --student: the converted student's matrices (f32, bf16)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->add_option("--top-k", o->top_k, "kd: teacher top-k")->check(CLI::NonNegativeNumber);
  cmd->add_option("--ranks", o->ranks, "Data parallel: plan one rank of this many (mpirun -np), its share of the rows")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--zero", o->zero, "With --ranks: 1 or 2 shard the optimiser's moments (default: the config's, else 1), 0 not")
      ->check(CLI::Range(0, 2));
  cmd->add_option("--device-memory", o->device_memory, "The device's memory, e.g. 80G (default: this machine's, CPU)");
  cmd->add_flag("--json", o->json, "One JSON object per stage");
  cmd->add_flag("--check", o->check, "Exit 1 when a stage does not fit");
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace arwkv::cli
