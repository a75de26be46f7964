#include "infer/state_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "backend/ops.h"
#include "core/error.h"
#include "formats/file_util.h"

namespace arwkv {

namespace {

constexpr char kMagic[8] = {'A', 'R', 'W', 'K', 'V', 'S', 'T', '\0'};
constexpr uint32_t kVersion = 1;

uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string fingerprint(const LanguageModel& model) {
  const ModelConfig& c = model.config();
  return fmt::format("{} L{} C{} F{} H{}/{}x{} V{}", c.arch_name, c.n_layers, c.hidden_size, c.intermediate_size,
                     c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size);
}

template <typename T>
void put(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

// An integer field of the header in [lo, hi]: a float or an out-of-range number is an error, not a cast.
int64_t header_int(const std::string& path, const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
  const nlohmann::json& v = j.at(key);
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi) && lo <= 0
                        : v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  if (!in_range) fail("{}: bad state header: '{}' is {}, expected an integer in [{}, {}]", path, key, v.dump(), lo, hi);
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
}

// Tokens a state may say it holds: an RNN's count is not bounded by its size, but it stays far below
// where adding a prompt to it could overflow.
constexpr int64_t kMaxTokens = int64_t{1} << 48;

struct Parsed {
  nlohmann::json header;
  std::vector<uint8_t> bytes;
  size_t payload = 0;  // offset of the payload in bytes
};

Parsed parse(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open state file", path);
  Parsed p;
  p.bytes.assign(std::istreambuf_iterator<char>(in), {});
  const auto& b = p.bytes;
  constexpr size_t kFixed = 8 + 4 + 4 + 8;
  if (b.size() < kFixed + 8 || std::memcmp(b.data(), kMagic, 8) != 0) fail("{}: not an arwkv state file", path);
  uint32_t version;
  std::memcpy(&version, b.data() + 8, 4);
  if (version != kVersion) fail("{}: state file version {} (this arwkv reads version {})", path, version, kVersion);
  uint64_t stored;
  std::memcpy(&stored, b.data() + b.size() - 8, 8);
  if (fnv1a(b.data(), b.size() - 8) != stored) fail("{}: checksum mismatch: the state file is corrupt or truncated", path);
  uint64_t hlen;
  std::memcpy(&hlen, b.data() + 16, 8);
  if (hlen > b.size() - kFixed - 8) fail("{}: header length {} past the end of the file", path, hlen);
  try {
    p.header = nlohmann::json::parse(b.begin() + kFixed, b.begin() + static_cast<ptrdiff_t>(kFixed + hlen));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad state header: {}", path, e.what());
  }
  p.payload = kFixed + hlen;
  return p;
}

}  // namespace

int64_t state_file_tokens(const std::string& path) {
  try {
    return header_int(path, parse(path).header, "n_tokens", 0, kMaxTokens);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad state header: {}", path, e.what());
  }
}

void save_state_file(const std::string& path, const LanguageModel& model, ModelState& state,
                     std::span<const float> last_logits) {
  std::vector<StateTensor> tensors = state.tensors();
  nlohmann::json list = nlohmann::json::array();
  uint64_t offset = 0;
  for (const StateTensor& t : tensors) {
    std::vector<int64_t> shape(t.tensor.shape.dims.begin(), t.tensor.shape.dims.begin() + t.tensor.shape.ndim);
    list.push_back({{"name", t.name}, {"shape", shape}, {"offset", offset}, {"nbytes", t.tensor.nbytes()}});
    offset += t.tensor.nbytes();
  }
  nlohmann::json header = {{"model", fingerprint(model)},
                           {"n_tokens", state.n_tokens()},
                           {"tensors", list},
                           {"logits", last_logits.size()}};
  const std::string h = header.dump();
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  put(out, kVersion);
  put(out, uint32_t{0});
  put(out, static_cast<uint64_t>(h.size()));
  out.insert(out.end(), h.begin(), h.end());
  for (const StateTensor& t : tensors) {
    const size_t at = out.size();
    out.resize(at + t.tensor.nbytes());
    model.ops().download(out.data() + at, t.tensor);
  }
  const auto* lp = reinterpret_cast<const uint8_t*>(last_logits.data());
  out.insert(out.end(), lp, lp + last_logits.size_bytes());
  put(out, fnv1a(out.data(), out.size()));
  write_file_atomically(path, [&](std::FILE* f) {
    if (std::fwrite(out.data(), 1, out.size(), f) != out.size()) fail("{}: write failed", path);
  });
}

std::vector<float> load_state_file(const std::string& path, const LanguageModel& model, ModelState& state) {
  Parsed p = parse(path);
  try {
    const std::string want = fingerprint(model), got = p.header.at("model").get<std::string>();
    if (want != got) fail("{}: the state belongs to a model \"{}\", not this one (\"{}\")", path, got, want);
    state.set_n_tokens(header_int(path, p.header, "n_tokens", 0, kMaxTokens));
    std::vector<StateTensor> tensors = state.tensors();
    const auto& list = p.header.at("tensors");
    if (!list.is_array() || list.size() != tensors.size())
      fail("{}: the state has {} tensors, this model's has {}", path, list.size(), tensors.size());
    const size_t end = p.bytes.size() - 8;
    uint64_t used = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i].tensor;
      const auto& dims = list[i].at("shape");
      std::vector<int64_t> shape;
      for (const auto& d : dims) {
        if (!d.is_number_integer() || shape.size() == static_cast<size_t>(kMaxDims))
          fail("{}: state tensor {} has a bad shape {}", path, tensors[i].name, dims.dump());
        shape.push_back(d.get<int64_t>());
      }
      if (list[i].at("name").get<std::string>() != tensors[i].name || !(Shape::from(shape) == t.shape))
        fail("{}: state tensor {} {} does not match this model's {} {}", path, list[i].at("name").get<std::string>(),
             Shape::from(shape).str(), tensors[i].name, t.shape.str());
      const auto off = static_cast<uint64_t>(header_int(path, list[i], "offset", 0, INT64_MAX));
      if (off != used || t.nbytes() > end - p.payload - off) fail("{}: state tensor {} lies outside the file", path, tensors[i].name);
      model.ops().upload(t, p.bytes.data() + p.payload + off);
      used += t.nbytes();
    }
    const auto V = static_cast<size_t>(header_int(path, p.header, "logits", 0, INT64_MAX));
    if (V > (end - p.payload - used) / sizeof(float) || p.payload + used + V * sizeof(float) != end) fail("{}: the state file's size does not match its header", path);
    std::vector<float> logits(V);
    std::memcpy(logits.data(), p.bytes.data() + p.payload + used, V * sizeof(float));
    return logits;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad state header: {}", path, e.what());
  }
}

}  // namespace arwkv
