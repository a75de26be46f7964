// The stage-kind registry, the default parts of Objective and the run's random stream.
#include "train/objective.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "core/error.h"

namespace arwkv {
namespace {

std::map<std::string, ObjectiveFactory>& registry() {
  static std::map<std::string, ObjectiveFactory> r;
  return r;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

bool is_parameter_group(const std::string& group) {
  return std::any_of(std::begin(kParameterGroups), std::end(kParameterGroups),
                     [&](const char* g) { return group == g; });
}

uint64_t TrainRng::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double TrainRng::next_uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

int64_t Objective::count(const Batch& batch) const { return count_valid_targets(batch); }

void Objective::zero_grad() {
  std::vector<float> zeros;
  for (const Parameter& p : parameters()) {
    ARWKV_ASSERT(p.grad.dtype == DType::F32, "parameter {}: gradients are fp32", p.name);
    if (zeros.size() < static_cast<size_t>(p.grad.numel())) zeros.assign(static_cast<size_t>(p.grad.numel()), 0.0f);
    ops().upload(p.grad, zeros.data());
  }
}

void register_objective(const std::string& kind, ObjectiveFactory factory) {
  std::lock_guard lock(registry_mutex());
  registry()[kind] = std::move(factory);
}

bool has_objective(const std::string& kind) {
  std::lock_guard lock(registry_mutex());
  return registry().count(kind) != 0;
}

std::unique_ptr<Objective> make_objective(const std::string& kind, const StageConfig& stage, const RunContext& ctx) {
  ObjectiveFactory f;
  {
    std::lock_guard lock(registry_mutex());
    auto it = registry().find(kind);
    if (it == registry().end()) fail("stage kind '{}': no objective is registered for it", kind);
    f = it->second;
  }
  std::unique_ptr<Objective> o = f(stage, ctx);
  ARWKV_ASSERT(o != nullptr, "the factory of kind {} returned nothing", kind);
  return o;
}

int64_t count_valid_targets(const Batch& batch) {
  int64_t n = 0;
  for (int64_t b = 0; b < batch.B; ++b)
    for (int64_t t = 0; t < batch.T; ++t) n += batch.target_valid(b, t) ? 1 : 0;
  return n;
}

}  // namespace arwkv
