// Learning-rate schedule, gradient norm and clipping, and AdamW over the backend's adamw_step op.
#include "train/optim.h"

#include <cmath>
#include <numbers>
#include <string>

#include "core/error.h"
#include "formats/safetensors.h"

namespace arwkv {

double LrSchedule::at(int64_t step) const {
  if (warmup > 0 && step <= warmup) return lr * static_cast<double>(step) / static_cast<double>(warmup);
  if (step >= total) return total > warmup ? min_lr : lr;
  const double p = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
}

double global_grad_norm(Ops& ops, const std::vector<Parameter>& params) {
  Buffer buf = ops.alloc(sizeof(float));
  Tensor acc{buf.data(), Shape{1}, DType::F32, ops.device()};
  const float zero = 0.0f;
  ops.upload(acc, &zero);
  for (const Parameter& p : params) ops.sum_squares(acc, p.grad);
  float total = 0.0f;
  ops.download(&total, acc);
  return std::sqrt(static_cast<double>(total));
}

void scale_grads(Ops& ops, const std::vector<Parameter>& params, float s) {
  for (const Parameter& p : params) ops.scale(p.grad, s);
}

double clip_grad_norm(Ops& ops, const std::vector<Parameter>& params, double max_norm) {
  const double norm = global_grad_norm(ops, params);
  if (max_norm > 0.0 && norm > max_norm) scale_grads(ops, params, static_cast<float>(max_norm / norm));
  return norm;
}

std::vector<ParamPart> shard_parts(const std::vector<Parameter>& params, int ranks) {
  ARWKV_ASSERT(ranks >= 1, "ranks {}", ranks);
  int64_t total = 0;
  for (const Parameter& p : params) total += p.value.numel();
  auto range_begin = [&](int r) { return total * r / ranks; };
  std::vector<ParamPart> parts;
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].value.numel();
    for (int r = 0; r < ranks; ++r) {
      const int64_t lo = std::max(offset, range_begin(r)), hi = std::min(offset + n, range_begin(r + 1));
      if (lo < hi || (ranks == 1 && n == 0)) parts.push_back(ParamPart{i, lo - offset, hi - offset, r});
    }
    offset += n;
  }
  return parts;
}

Tensor flat_range(const Tensor& t, int64_t begin, int64_t end) {
  ARWKV_ASSERT(t.dtype == DType::F32 && 0 <= begin && begin <= end && end <= t.numel(), "range [{}, {}) of {} {}",
               begin, end, dtype_name(t.dtype), t.shape.str());
  return Tensor{static_cast<float*>(t.data) + begin, Shape{end - begin}, DType::F32, t.device};
}

AdamW::AdamW(Ops& ops, std::vector<Parameter> params, const AdamWOptions& opt, const OptimShard& shard)
    : ops_(ops), params_(std::move(params)), opt_(opt), shard_(shard) {
  parts_ = shard_parts(params_, shard_.ranks);
  std::vector<float> zeros;
  for (size_t k = 0; k < parts_.size(); ++k) {
    const ParamPart& part = parts_[k];
    const Parameter& p = params_[part.param];
    ARWKV_ASSERT(p.value.shape == p.grad.shape, "parameter {}: value {} and gradient {} differ", p.name,
                 p.value.shape.str(), p.grad.shape.str());
    if (part.owner != shard_.rank) continue;
    // One rank: the parameter's own shape (the checkpoint names whole tensors); else a flat part.
    const Shape shape = shard_.ranks == 1 ? p.value.shape : Shape{part.end - part.begin};
    Moments mo;
    mo.part = k;
    const size_t bytes = static_cast<size_t>(shape.numel()) * sizeof(float);
    mo.m_buf = ops_.alloc(bytes);
    mo.v_buf = ops_.alloc(bytes);
    mo.m = Tensor{mo.m_buf.data(), shape, DType::F32, ops_.device()};
    mo.v = Tensor{mo.v_buf.data(), shape, DType::F32, ops_.device()};
    zeros.assign(static_cast<size_t>(shape.numel()), 0.0f);
    ops_.upload(mo.m, zeros.data());
    ops_.upload(mo.v, zeros.data());
    moments_.push_back(std::move(mo));
  }
}

uint64_t AdamW::moment_bytes() const {
  uint64_t n = 0;
  for (const Moments& mo : moments_) n += 2 * static_cast<uint64_t>(mo.m.numel()) * sizeof(float);
  return n;
}

void AdamW::step(double lr) {
  ++step_;
  for (const Moments& mo : moments_) {
    const ParamPart& part = parts_[mo.part];
    const Parameter& p = params_[part.param];
    const bool whole = shard_.ranks == 1;
    const Tensor value = whole ? p.value : flat_range(p.value, part.begin, part.end);
    const Tensor grad = whole ? p.grad : flat_range(p.grad, part.begin, part.end);
    ops_.adamw_step(value, grad, mo.m, mo.v, static_cast<float>(lr) * p.lr_scale, opt_.beta1, opt_.beta2, opt_.eps,
                    p.decay ? opt_.weight_decay : 0.0f, step_);
  }
}

void AdamW::save(SafetensorsWriter& w) const {
  for (const Moments& mo : moments_) {  // downloaded when the writer writes them, one at a time
    const ParamPart& part = parts_[mo.part];
    const std::string suffix =
        params_[part.param].name + (shard_.ranks == 1 ? std::string() : fmt::format("@{}", part.begin));
    for (const auto& [prefix, moment] : {std::pair{"adamw.m/", mo.m}, std::pair{"adamw.v/", mo.v}}) {
      const Tensor t = moment;  // a named copy: lambdas may not capture structured bindings everywhere
      w.add_deferred(prefix + suffix, t.shape, DType::F32, [this, t] {
        HostTensor host(t.shape);
        ops_.download(host.values.data(), t);
        return host;
      });
    }
  }
}

namespace {

// Copies into out (elements [begin, end) of the parameter) whatever the files hold of them, under
// `name` (the whole tensor) or `name@b` (elements b .. b + length); returns how many it copied.
int64_t gather_moment(const std::vector<const SafetensorsFile*>& files, const std::string& name, const Shape& shape,
                      int64_t begin, int64_t end, std::vector<float>& out) {
  int64_t copied = 0;
  auto copy = [&](const HostTensor& h, int64_t at) {
    const int64_t lo = std::max(begin, at), hi = std::min(end, at + h.shape.numel());
    for (int64_t i = lo; i < hi; ++i) out[static_cast<size_t>(i - begin)] = h.values[static_cast<size_t>(i - at)];
    copied += std::max<int64_t>(0, hi - lo);
  };
  const std::string piece = name + "@";
  for (const SafetensorsFile* f : files) {
    if (f->find(name)) {
      const HostTensor h = f->load(name);
      if (!(h.shape == shape))
        fail("{}: optimiser tensor {} has shape {}, the parameter {}", f->path(), name, h.shape.str(), shape.str());
      copy(h, 0);
      continue;
    }
    for (const SafetensorsEntry& e : f->tensors()) {
      if (!e.name.starts_with(piece)) continue;
      int64_t at = -1;
      try {
        at = std::stoll(e.name.substr(piece.size()));
      } catch (const std::exception&) {
      }
      const int64_t n = e.numel();
      if (at < 0 || at + n > shape.numel())
        fail("{}: optimiser tensor {} is not a part of a parameter of shape {}", f->path(), e.name, shape.str());
      if (at < end && at + n > begin) copy(f->load(e.name), at);
    }
  }
  return copied;
}

}  // namespace

void AdamW::load(const std::vector<const SafetensorsFile*>& files) {
  ARWKV_ASSERT(!files.empty(), "no optimiser files");
  std::vector<float> host;
  for (const Moments& mo : moments_) {
    const ParamPart& part = parts_[mo.part];
    const Parameter& p = params_[part.param];
    for (const auto& [prefix, moment] : {std::pair{"adamw.m/", mo.m}, std::pair{"adamw.v/", mo.v}}) {
      const std::string name = prefix + p.name;
      host.assign(static_cast<size_t>(part.end - part.begin), 0.0f);
      const int64_t got = gather_moment(files, name, p.value.shape, part.begin, part.end, host);
      if (got == 0) fail("{}: optimiser state has no tensor {}", files.front()->path(), name);
      if (got != part.end - part.begin)
        fail("{}: optimiser state covers {} of elements [{}, {}) of {} (a tensor missing, or the parts overlap)",
             files.front()->path(), got, part.begin, part.end, name);
      ops_.upload(moment, host.data());
    }
  }
}

}  // namespace arwkv
