// Writing and finding training checkpoints atomically (train_checkpoint.h).
#include "train/train_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/file_util.h"
#include "formats/safetensors.h"

namespace arwkv {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTmpPrefix = ".tmp-";

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
}

// Checkpoint directories under out/checkpoints, oldest first (by stage index, then step).
std::vector<std::pair<TrainState, fs::path>> list_checkpoints(const fs::path& root) {
  std::vector<std::pair<TrainState, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.starts_with(kTmpPrefix) || !fs::exists(e.path() / "state.json")) continue;
    const std::string p = (e.path() / "state.json").string();
    found.emplace_back(TrainState::from_json(read_json(p), p), e.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::pair{a.first.stage_index, a.first.step} < std::pair{b.first.stage_index, b.first.step};
  });
  return found;
}

void save_params(const std::string& path, const std::vector<Parameter>& params, Ops& ops) {
  SafetensorsWriter w;
  for (const Parameter& p : params)  // downloaded one at a time while writing
    w.add_deferred(p.name, p.value.shape, DType::F32, [&ops, p] {
      HostTensor host(p.value.shape);
      ops.download(host.values.data(), p.value);
      return host;
    });
  w.write(path);
}

}  // namespace

nlohmann::json TrainState::to_json() const {
  return {{"stage_index", stage_index}, {"stage", stage},     {"step", step},
          {"tokens", tokens},           {"stage_complete", stage_complete},
          {"cursor", cursor.to_json()}, {"rng", rng},         {"metrics_bytes", metrics_bytes},
          {"seconds", seconds}};
}

TrainState TrainState::from_json(const nlohmann::json& j, const std::string& source) {
  TrainState s;
  try {
    s.stage_index = j.at("stage_index").get<int>();
    s.stage = j.at("stage").get<std::string>();
    s.step = j.at("step").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.stage_complete = j.at("stage_complete").get<bool>();
    s.cursor = DataCursor::from_json(j.at("cursor"), source);
    s.rng = j.at("rng").get<uint64_t>();
    s.metrics_bytes = j.at("metrics_bytes").get<uint64_t>();
    s.seconds = j.value("seconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad training state ({})", source, e.what());
  }
  return s;
}

std::string optimizer_file_name(int rank, int ranks) {
  return ranks == 1 ? "optimizer.safetensors" : fmt::format("optimizer-{}-of-{}.safetensors", rank, ranks);
}

std::string write_train_checkpoint(const std::string& out, const TrainState& state,
                                   const std::vector<Parameter>& params, Ops& ops, const AdamW& adam,
                                   const std::string& config_text, int64_t keep, Comm& comm) {
  const fs::path root = fs::path(out) / "checkpoints";
  const std::string name = fmt::format("{}-{}", state.stage, state.step);
  const fs::path tmp = root / (kTmpPrefix + name), dir = root / name;
  const bool lead = comm.rank() == 0;
  if (lead) {
    fs::create_directories(root);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }
  comm.barrier();  // every rank writes its optimiser part into tmp (rank 0 a whole one)
  const int parts = adam.shard().ranks;
  if (lead || parts > 1) {
    SafetensorsWriter w;
    adam.save(w);
    w.write((tmp / optimizer_file_name(adam.shard().rank, parts)).string());
  }
  comm.barrier();
  if (lead) {
    save_params((tmp / "params.safetensors").string(), params, ops);
    write_text((tmp / "state.json").string(), state.to_json().dump(2) + "\n");
    write_text((tmp / "config.toml").string(), config_text);
    fs::remove_all(dir);  // a killed run may have left one of this name that latest never pointed at
    fs::rename(tmp, dir);
    write_text((fs::path(out) / "latest").string(), "checkpoints/" + name + "\n");
    auto all = list_checkpoints(root);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i)
      if (all[i].second != dir) fs::remove_all(all[i].second);
  }
  comm.barrier();  // nobody goes on before the checkpoint is in place
  return dir.string();
}

std::optional<LatestCheckpoint> find_latest_checkpoint(const std::string& out) {
  const fs::path latest = fs::path(out) / "latest";
  if (!fs::exists(latest)) return std::nullopt;
  std::string rel = read_text(latest.string());
  while (!rel.empty() && (rel.back() == '\n' || rel.back() == '\r')) rel.pop_back();
  const fs::path dir = fs::path(out) / rel;
  const std::string state = (dir / "state.json").string();
  if (rel.empty() || !fs::exists(state)) fail("{}: points at '{}', which holds no checkpoint", latest.string(), rel);
  return LatestCheckpoint{dir.string(), TrainState::from_json(read_json(state), state)};
}

void load_train_checkpoint(const std::string& dir, const std::vector<Parameter>& params, Ops& ops, AdamW& adam) {
  const auto pf = SafetensorsFile::open((fs::path(dir) / "params.safetensors").string());
  for (const Parameter& p : params) {
    if (!pf->find(p.name)) fail("{}: no tensor {} (was the stage's train list changed?)", pf->path(), p.name);
    const HostTensor h = pf->load(p.name);
    if (!(h.shape == p.value.shape))
      fail("{}: tensor {} has shape {}, the parameter {}", pf->path(), p.name, h.shape.str(), p.value.shape.str());
    ops.upload(p.value, h.values.data());
  }
  // optimizer.safetensors (one rank) or optimizer-R-of-N.safetensors (N ranks): any sharding loads.
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.starts_with("optimizer") && f.ends_with(".safetensors")) files.push_back(SafetensorsFile::open(e.path().string()));
  }
  if (files.empty()) fail("{}: no optimizer*.safetensors in the checkpoint", dir);
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a->path() < b->path(); });
  std::vector<const SafetensorsFile*> views;
  for (const auto& f : files) views.push_back(f.get());
  adam.load(views);
}

void remove_partial_checkpoints(const std::string& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(out) / "checkpoints", ec))
    if (e.path().filename().string().starts_with(kTmpPrefix)) fs::remove_all(e.path());
}

}  // namespace arwkv
