// Learning-rate schedule, gradient norm and clipping, and AdamW over the backend's adamw_step op.
#include "train/optim.h"

#include <cmath>
#include <numbers>

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

AdamW::AdamW(Ops& ops, std::vector<Parameter> params, const AdamWOptions& opt)
    : ops_(ops), params_(std::move(params)), opt_(opt) {
  std::vector<float> zeros;
  moments_.reserve(params_.size());
  for (const Parameter& p : params_) {
    ARWKV_ASSERT(p.value.shape == p.grad.shape, "parameter {}: value {} and gradient {} differ", p.name,
                 p.value.shape.str(), p.grad.shape.str());
    Moments mo;
    mo.m_buf = ops_.alloc(p.value.numel() * sizeof(float));
    mo.v_buf = ops_.alloc(p.value.numel() * sizeof(float));
    mo.m = Tensor{mo.m_buf.data(), p.value.shape, DType::F32, ops_.device()};
    mo.v = Tensor{mo.v_buf.data(), p.value.shape, DType::F32, ops_.device()};
    zeros.assign(static_cast<size_t>(p.value.numel()), 0.0f);
    ops_.upload(mo.m, zeros.data());
    ops_.upload(mo.v, zeros.data());
    moments_.push_back(std::move(mo));
  }
}

void AdamW::step(double lr) {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Parameter& p = params_[i];
    ops_.adamw_step(p.value, p.grad, moments_[i].m, moments_[i].v, static_cast<float>(lr) * p.lr_scale, opt_.beta1,
                    opt_.beta2, opt_.eps, p.decay ? opt_.weight_decay : 0.0f, step_);
  }
}

void AdamW::save(SafetensorsWriter& w) const {
  for (size_t i = 0; i < params_.size(); ++i)  // downloaded when the writer writes them, one at a time
    for (const auto& [prefix, moment] : {std::pair{"adamw.m/", moments_[i].m}, std::pair{"adamw.v/", moments_[i].v}}) {
      const Tensor t = moment;  // a named copy: lambdas may not capture structured bindings everywhere
      w.add_deferred(prefix + params_[i].name, t.shape, DType::F32, [this, t] {
        HostTensor host(t.shape);
        ops_.download(host.values.data(), t);
        return host;
      });
    }
}

void AdamW::load(const SafetensorsFile& f) {
  for (size_t i = 0; i < params_.size(); ++i) {
    for (const auto& [prefix, t] : {std::pair{"adamw.m/", moments_[i].m}, std::pair{"adamw.v/", moments_[i].v}}) {
      const std::string name = prefix + params_[i].name;
      if (!f.find(name)) fail("{}: optimiser state has no tensor {}", f.path(), name);
      const HostTensor h = f.load(name);
      if (!(h.shape == t.shape))
        fail("{}: optimiser tensor {} has shape {}, the parameter {}", f.path(), name, h.shape.str(), t.shape.str());
      ops_.upload(t, h.values.data());
    }
  }
}

}  // namespace arwkv
