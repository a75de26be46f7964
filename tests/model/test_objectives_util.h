// Helpers of the objective and student-backward tests: the tiny teacher and students of
// tests/data/student_grad (tools/oracle/make_student_grad_fixtures.py), the packed batch their
// oracle dumps are for, objectives built on a chosen backend, and gradients read back in the
// checkpoint's (HF) layout.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "formats/checkpoint.h"
#include "model/student/student_checkpoint.h"
#include "test_util.h"
#include "train/objectives.h"

namespace arwkv::test {

inline const std::vector<std::string> kAllGroups = {"time_mix", "mlp", "norm", "embedding", "head"};

inline std::string grad_dir(const std::string& name) { return data_path("student_grad/" + name); }

inline nlohmann::json oracle_json(const std::string& student) {
  std::ifstream in(grad_dir(student) + "/oracle.json");
  return nlohmann::json::parse(in);
}

// The oracle's packed batch: B rows of T + 1 tokens, document ids, mask, and the reference
// log-probabilities the dpo loss reads (rows 0 and 1 are its chosen and rejected documents).
inline Batch oracle_batch(const nlohmann::json& o) {
  Batch b;
  b.B = o["B"].get<int64_t>(), b.T = o["T"].get<int64_t>();
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = 0; t <= b.T; ++t) {
      b.tokens.push_back(o["tokens"][r][t].get<int32_t>());
      b.doc_ids.push_back(o["doc_ids"][r][t].get<int64_t>());
      b.mask.push_back(static_cast<uint8_t>(o["mask"][r][t].get<int>()));
      if (o.contains("ref")) b.ref.push_back(o["ref"][r][t].get<float>());
    }
  return b;
}

inline std::unique_ptr<Student> load_grad_student(const std::string& name, Ops& ops) {
  return std::make_unique<Student>(*StudentCheckpoint::open(grad_dir(name)), ops);
}

inline std::unique_ptr<Teacher> load_grad_teacher(Ops& ops) {
  return std::make_unique<Teacher>(*Checkpoint::open(grad_dir("teacher")), ops);
}

// One of the oracle's losses ("align", "kd_full", "kd_topk", "sft", "dpo") as an objective.
inline std::unique_ptr<StudentObjective> make_oracle_objective(const std::string& student, const std::string& loss,
                                                               Ops& ops, bool recompute = false,
                                                               const std::vector<std::string>& groups = kAllGroups) {
  if (loss == "align") return std::make_unique<AlignObjective>(load_grad_student(student, ops), load_grad_teacher(ops), recompute);
  if (loss == "sft") return std::make_unique<SftObjective>(load_grad_student(student, ops), groups, recompute);
  const nlohmann::json opt = oracle_json(student)["losses"][loss]["options"];
  if (loss == "dpo")
    return std::make_unique<DpoObjective>(load_grad_student(student, ops), groups, opt["beta"].get<double>(), recompute);
  const KdOptions kd{.temperature = opt["temperature"].get<float>(), .top_k = opt["top_k"].get<int64_t>(),
                     .ce_weight = opt["ce_weight"].get<float>()};
  return std::make_unique<KdObjective>(load_grad_student(student, ops), load_grad_teacher(ops), groups, kd, recompute);
}

// A pure time-mix student of the tiny Gemma 3 teacher (tests/data/teacher/gemma3_tiny), made by
// convert in a temporary directory for the life of the object.
struct GemmaStudent {
  std::string dir = (std::filesystem::temp_directory_path() / fmt::format("arwkv_gemma_student_{}", getpid())).string();
  GemmaStudent() {
    std::filesystem::remove_all(dir);
    ConvertOptions o;
    o.teacher = data_path("teacher/gemma3_tiny");
    o.out = dir;
    o.init = InitKind::Arwkv;
    o.lora_ranks = LoraRanks{8, 8, 8, 8};
    o.seed = 5;
    convert_teacher(o);
  }
  ~GemmaStudent() { std::filesystem::remove_all(dir); }
  GemmaStudent(const GemmaStudent&) = delete;
  GemmaStudent& operator=(const GemmaStudent&) = delete;
};

// A tensor's values on the host, LoRA matrices transposed back to the stored [in, out].
inline std::vector<float> stored_layout(const Student& s, const std::string& name, const Tensor& t) {
  std::vector<float> v = s.weight_to_host(t).values;
  if (!describe_student_weight(s, name).lora) return v;
  const int64_t R = t.dim(0), C = t.dim(1);
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) out[static_cast<size_t>(c * R + r)] = v[static_cast<size_t>(r * C + c)];
  return out;
}

// Every parameter's gradient by name, in the stored layout.
inline std::map<std::string, std::vector<float>> gradients(StudentObjective& obj) {
  std::map<std::string, std::vector<float>> out;
  for (const Parameter& p : obj.parameters()) out[p.name] = stored_layout(obj.student(), p.name, p.grad);
  return out;
}

}  // namespace arwkv::test
