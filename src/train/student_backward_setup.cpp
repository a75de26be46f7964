// StudentBackprop's setup: the trainable parameters (value views into the student's weights,
// gradient views of one buffer), the check that every trainable tensor is reachable from the loss,
// and the activation arena of a pass.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "model/family_parts.h"
#include "model/student/student_config.h"
#include "train/student_backward_parts.h"

namespace arwkv {
namespace {

constexpr size_t kAlign = 64;

struct Carver {
  char* base;  // null: only count the bytes
  size_t offset = 0;
  Device device = Device::CPU;
  Tensor take(const Shape& s, DType dt = DType::F32) {
    Tensor t{base ? base + offset : nullptr, s, dt, device};
    offset += (static_cast<size_t>(s.numel()) * dtype_size(dt) + kAlign - 1) / kAlign * kAlign;
    return t;
  }
};

// A layer tensor's place in Student::Layer: the key after "model.layers.{l}.".
struct FieldInfo {
  const char* key;
  Tensor Student::Layer::* field;
  const char* group;
  bool decay;
};

constexpr const char* kMixKeys[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};

const FieldInfo kFields[] = {
    {"input_layernorm.weight", &Student::Layer::attn_norm, "norm", false},
    {"mlp.gate_proj.weight", &Student::Layer::w_gate, "mlp", true},
    {"mlp.up_proj.weight", &Student::Layer::w_up, "mlp", true},
    {"mlp.down_proj.weight", &Student::Layer::w_down, "mlp", true},
    {"self_attn.q_proj.weight", &Student::Layer::wq, "attention", true},
    {"self_attn.k_proj.weight", &Student::Layer::wk, "attention", true},
    {"self_attn.v_proj.weight", &Student::Layer::wv, "attention", true},
    {"self_attn.o_proj.weight", &Student::Layer::wo, "attention", true},
    {"self_attn.q_proj.bias", &Student::Layer::bq, "attention", false},
    {"self_attn.k_proj.bias", &Student::Layer::bk, "attention", false},
    {"self_attn.v_proj.bias", &Student::Layer::bv, "attention", false},
    {"self_attn.q_norm.weight", &Student::Layer::q_norm, "attention", false},
    {"self_attn.k_norm.weight", &Student::Layer::k_norm, "attention", false},
    {"self_attn.time_mixer.receptance.weight", &Student::Layer::receptance, "time_mix", true},
    {"self_attn.time_mixer.key.weight", &Student::Layer::key, "time_mix", true},
    {"self_attn.time_mixer.value.weight", &Student::Layer::value, "time_mix", true},
    {"self_attn.time_mixer.output.weight", &Student::Layer::output, "time_mix", true},
    {"self_attn.time_mixer.w0", &Student::Layer::w0, "time_mix", false},
    {"self_attn.time_mixer.w1", &Student::Layer::w1, "time_mix", true},
    {"self_attn.time_mixer.w2", &Student::Layer::w2, "time_mix", true},
    {"self_attn.time_mixer.a0", &Student::Layer::a0, "time_mix", false},
    {"self_attn.time_mixer.a1", &Student::Layer::a1, "time_mix", true},
    {"self_attn.time_mixer.a2", &Student::Layer::a2, "time_mix", true},
    {"self_attn.time_mixer.v0", &Student::Layer::v0, "time_mix", false},
    {"self_attn.time_mixer.v1", &Student::Layer::v1, "time_mix", true},
    {"self_attn.time_mixer.v2", &Student::Layer::v2, "time_mix", true},
    {"self_attn.time_mixer.g1", &Student::Layer::g1, "time_mix", true},
    {"self_attn.time_mixer.g2", &Student::Layer::g2, "time_mix", true},
    {"self_attn.time_mixer.k_k", &Student::Layer::k_k, "time_mix", false},
    {"self_attn.time_mixer.k_a", &Student::Layer::k_a, "time_mix", false},
    {"self_attn.time_mixer.r_k", &Student::Layer::r_k, "time_mix", false},
    {"self_attn.time_mixer.ln_x.weight", &Student::Layer::ln_w, "time_mix", false},
    {"self_attn.time_mixer.ln_x.bias", &Student::Layer::ln_b, "time_mix", false},
};

// "model.layers.7.mlp.up_proj.weight" → 7 and "mlp.up_proj.weight"; −1 for a non-layer tensor.
int64_t split_layer_name(const std::string& name, std::string* key) {
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  *key = name.substr(dot + 1);
  return std::stoll(name.substr(prefix.size(), dot - prefix.size()));
}

// The norms around the MLP, named by the family: their place in Student::Layer, or nullptr.
Tensor Student::Layer::* family_norm(const Family& fam, const std::string& key) {
  auto is = [&](const char* name) { return name && key == std::string(name) + ".weight"; };
  if (is(fam.mlp_norm)) return &Student::Layer::mlp_norm;
  if (is(fam.post_attn_norm)) return &Student::Layer::post_attn_norm;
  if (is(fam.post_mlp_norm)) return &Student::Layer::post_mlp_norm;
  return nullptr;
}

bool wants(const std::vector<std::string>& groups, const std::string& g) {
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

}  // namespace

StudentWeight describe_student_weight(const Student& student, const std::string& name) {
  const StudentConfig& cfg = student.student_config();
  const int64_t L = cfg.base.n_layers;
  StudentWeight w;
  std::string key;
  w.layer = split_layer_name(name, &key);
  if (w.layer < 0) {
    if (name == "model.embed_tokens.weight") {
      w.value = student.embedding(), w.group = "embedding", w.level = -1;
    } else if (name == "lm_head.weight" && !cfg.base.tie_embeddings) {
      w.value = student.lm_head(), w.group = "head", w.decay = true, w.level = L + 1;
    } else if (name == "model.norm.weight") {
      w.value = student.final_norm(), w.group = "norm", w.level = L;
    } else {
      fail("student: no tensor named {}", name);
    }
    return w;
  }
  if (w.layer >= L) fail("student: no tensor named {}", name);
  const Student::Layer& layer = student.layers()[static_cast<size_t>(w.layer)];
  w.level = w.layer;
  const std::string last = key.substr(key.rfind('.') + 1);
  const auto mix = std::find(std::begin(kMixKeys), std::end(kMixKeys), last);
  if (key.rfind("self_attn.time_mixer.x_", 0) == 0 && mix != std::end(kMixKeys) && layer.wkv) {
    w.plane = mix - std::begin(kMixKeys);
    if (w.plane >= layer.mix.dim(0)) fail("student: no tensor named {}", name);
    w.value = layer.mix.slice_rows(w.plane, w.plane + 1), w.group = "time_mix";
    return w;
  }
  if (Tensor Student::Layer::* norm = family_norm(family(cfg.base.arch), key)) {
    w.field = norm, w.value = layer.*norm, w.group = "norm";
  }
  for (const FieldInfo& f : kFields)
    if (key == f.key) {
      w.field = f.field, w.value = layer.*(f.field), w.group = f.group, w.decay = f.decay;
      w.lora = w.group == "time_mix" && w.decay && key.find(".weight") == std::string::npos;
    }
  if (!w.value.data) fail("student: no tensor named {}", name);
  return w;
}

bool student_tensor_trains(const StudentConfig& cfg, const std::string& name, const std::vector<std::string>& groups) {
  std::string key;
  if (split_layer_name(name, &key) < 0) {
    if (name == "model.embed_tokens.weight")
      return wants(groups, "embedding") || (cfg.base.tie_embeddings && wants(groups, "head"));
    if (name == "lm_head.weight") return wants(groups, "head");
    if (name == "model.norm.weight") return wants(groups, "norm");
    return false;
  }
  if (key.rfind("self_attn.time_mixer.", 0) == 0) return wants(groups, "time_mix");
  if (family_norm(family(cfg.base.arch), key)) return wants(groups, "norm");
  for (const FieldInfo& f : kFields)
    if (key == f.key) return wants(groups, f.group);
  return false;
}

StudentBackprop::StudentBackprop(const Student& student, const StudentGradOptions& opt)
    : student_(&student), ops_(&student.ops()), cfg_(student.student_config()), recompute_(opt.recompute),
      align_(opt.align), s_(std::make_unique<Scratch>()) {
  for (const std::string& g : opt.groups)
    if (!is_parameter_group(g)) fail("student training: unknown parameter group '{}'", g);
  n_planes_ = cfg_.has_gate ? 6 : 5;
  max_rank_ = std::max<int64_t>({cfg_.decay_lora, cfg_.iclr_lora, cfg_.value_lora, cfg_.has_gate ? cfg_.gate_lora : 1});
  setup_parameters(opt);
  check_reachable();
}

StudentBackprop::~StudentBackprop() = default;

// Walks student_tensor_list twice: the first pass sizes the gradient buffer, the second carves it.
void StudentBackprop::setup_parameters(const StudentGradOptions& opt) {
  const int64_t L = cfg_.base.n_layers;
  const bool tied = cfg_.base.tie_embeddings;
  if (wants(opt.groups, "attention") && !cfg_.pure_rwkv())
    fail("student training: the kept attention layers cannot train yet (no attention backward); "
         "drop 'attention' from the stage's groups");
  for (int pass = 0; pass < 2; ++pass) {
    Carver carve{pass ? static_cast<char*>(grad_buffer_.data()) : nullptr, 0, ops_->device()};
    params_.clear();
    grads_.assign(static_cast<size_t>(L), Student::Layer{});
    d_embed_ = d_final_norm_ = d_head_ = Tensor{};
    lowest_ = L + 1;
    for (const TensorSpec& spec : student_tensor_list(cfg_)) {
      StudentWeight w = describe_student_weight(*student_, spec.name);
      if (w.level == -1 && tied && wants(opt.groups, "head")) w.group = "head";  // one tensor, both roles
      if (!wants(opt.groups, w.group)) continue;
      Parameter p{spec.name, w.value, {}, w.group, w.decay};
      if (w.layer < 0) {
        p.grad = carve.take(w.value.shape);
        if (w.level == -1) d_embed_ = p.grad;
        if (w.level == -1 && tied) d_head_ = p.grad;
        if (w.level == L) d_final_norm_ = p.grad;
        if (w.level == L + 1) d_head_ = p.grad;
      } else if (w.plane >= 0) {
        Student::Layer& g = grads_[static_cast<size_t>(w.layer)];
        if (w.plane == 0) g.mix = carve.take(student_->layers()[static_cast<size_t>(w.layer)].mix.shape);
        float* base = g.mix.data ? static_cast<float*>(g.mix.data) + w.plane * w.value.numel() : nullptr;
        p.grad = Tensor{base, w.value.shape, DType::F32, ops_->device()};
      } else {
        p.grad = carve.take(w.value.shape);
        grads_[static_cast<size_t>(w.layer)].*(w.field) = p.grad;
      }
      lowest_ = std::min(lowest_, w.level);
      params_.push_back(std::move(p));
    }
    if (pass == 0) grad_buffer_ = ops_->alloc(std::max<size_t>(carve.offset, kAlign));
  }
  zero_grad();
}

// A gradient reaches layer l only through the layers above it: a kept attention layer at or above
// the lowest trainable tensor would cut it off (unless only its own MLP side trains).
void StudentBackprop::check_reachable() {
  if (align_) return;
  const std::vector<Student::Layer>& layers = student_->layers();
  for (int64_t l = std::max<int64_t>(lowest_, 0); l < cfg_.base.n_layers; ++l) {
    const Student::Layer& w = layers[static_cast<size_t>(l)];
    const Student::Layer& g = grads_[static_cast<size_t>(l)];
    if (w.wkv) continue;
    if (l > lowest_ || g.attn_norm.data)
      fail("student training: layer {} keeps the teacher's attention, which has no backward yet, so "
           "gradients cannot reach the trainable tensors below it; train only groups above layer {} "
           "(e.g. head, or mlp/norm with a student whose lower layers are all time mixing)",
           l, l);
  }
}

void StudentBackprop::zero_grad() {
  std::vector<float> zeros;
  for (const Parameter& p : params_) {
    if (zeros.size() < static_cast<size_t>(p.grad.numel())) zeros.assign(static_cast<size_t>(p.grad.numel()), 0.0f);
    ops_->upload(p.grad, zeros.data());
  }
}

// Every tensor of a pass over the current B, T, carved from base (or only counted when base is null).
void StudentBackprop::carve(char* base, size_t* bytes) {
  const ModelConfig& c = cfg_.base;
  const int64_t L = c.n_layers, R = B_ * T_, C = c.hidden_size, F = c.intermediate_size, P = n_planes_;
  const int64_t H = cfg_.n_wkv_heads(), N = cfg_.head_size;
  const Shape rc{R, C}, rf{R, F}, i32{R}, planes{P, B_, T_, C};
  Carver cv{base, 0, ops_->device()};
  Scratch& s = *s_;
  for (Tensor* t : {&s.ids, &s.resets, &s.pos, &s.key_start, &s.key_start_local}) *t = cv.take(i32, DType::I32);
  // Align passes run time-mix blocks on their own: no residual stream, head or MLP gradients.
  if (!align_) s.resid = cv.take(Shape{L + 1, R, C});
  for (Tensor* t : {&s.o, &s.v_first, &s.dv_first, &s.zeros, &s.dxn, &s.dr, &s.dk, &s.dv, &s.dw, &s.da, &s.db, &s.dy,
                    &s.dw_logit, &s.da_logit, &s.dv_logit, &s.dg})
    *t = cv.take(rc);
  if (!align_)
    for (Tensor* t : {&s.xf, &s.dx, &s.dxf, &s.dxn2}) *t = cv.take(rc);
  s.state = cv.take(Shape{B_, H, N, N});
  s.zero_state = cv.take(Shape{B_, H, N, N});
  s.x_prev = cv.take(Shape{B_, C});
  s.zero_x_prev = cv.take(Shape{B_, C});
  s.dmixed = cv.take(planes);
  s.dh = cv.take(Shape{R, max_rank_});
  if (!align_)
    for (Tensor* t : {&s.dhf, &s.dgate, &s.dup}) *t = cv.take(rf);
  if (!cfg_.pure_rwkv() && !align_) {
    const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    s.q = cv.take(Shape{R, qd}), s.att = cv.take(Shape{R, qd});
    s.kq = cv.take(Shape{R, kvd}), s.vq = cv.take(Shape{R, kvd});
  }
  auto take_acts = [&](Acts& a, bool wkv) {
    a = Acts{};
    a.xn = cv.take(rc);
    if (wkv) {
      a.mixed = cv.take(planes);
      for (Tensor* t : {&a.r, &a.k_in, &a.v_in, &a.k, &a.v, &a.w, &a.a, &a.b, &a.w_logit, &a.a_logit, &a.v_logit,
                        &a.g, &a.y_wkv, &a.y})
        *t = cv.take(rc);
      a.hw = cv.take(Shape{R, cfg_.decay_lora});
      a.ha = cv.take(Shape{R, cfg_.iclr_lora});
      a.hv = cv.take(Shape{R, cfg_.value_lora});
      if (cfg_.has_gate) a.hg = cv.take(Shape{R, cfg_.gate_lora});
    }
    if (align_) return;
    a.x_mid = cv.take(rc), a.xn2 = cv.take(rc);
    for (Tensor* t : {&a.gate, &a.up, &a.h}) *t = cv.take(rf);
    if (family(c.arch).post_attn_norm) a.o_pre = cv.take(rc);
    if (family(c.arch).post_mlp_norm) a.m_pre = cv.take(rc);
  };
  // Stored mode keeps every layer a backward visits; the others (and recompute mode) share one set.
  acts_.assign(static_cast<size_t>(L), Acts{});
  Acts shared;
  take_acts(shared, true);
  for (int64_t l = 0; l < L; ++l) {
    const bool wkv = cfg_.is_wkv_layer(l);
    const bool kept = !recompute_ && l >= lowest_ && (wkv || !align_);
    if (kept) take_acts(acts_[static_cast<size_t>(l)], wkv);
    else acts_[static_cast<size_t>(l)] = shared;
  }
  *bytes = cv.offset;
}

StudentBackprop::Acts& StudentBackprop::acts_for(int64_t layer) { return acts_[static_cast<size_t>(layer)]; }

void StudentBackprop::begin(int64_t B, int64_t T, std::span<const int32_t> resets) {
  if (B < 1 || T < 1) fail("student training: a pass needs B, T ≥ 1, got {} and {}", B, T);
  if (static_cast<int64_t>(resets.size()) != B * T)
    fail("student training: {} reset flags for {} rows of {} tokens", resets.size(), B, T);
  B_ = B, T_ = T;
  size_t bytes = 0;
  carve(nullptr, &bytes);
  if (bytes > arena_.size()) arena_ = ops_->alloc(bytes);
  carve(static_cast<char*>(arena_.data()), &bytes);
  align_inputs_.assign(static_cast<size_t>(cfg_.base.n_layers), Tensor{});

  std::vector<int32_t> pos(resets.size()), key_start(resets.size()), key_start_local(resets.size());
  any_reset_ = false;
  for (int64_t b = 0; b < B; ++b) {
    int32_t start = 0;
    for (int64_t t = 0; t < T; ++t) {
      const size_t i = static_cast<size_t>(b * T + t);
      if (t > 0 && resets[i] != 0) start = static_cast<int32_t>(t), any_reset_ = true;
      key_start[i] = start;
      key_start_local[i] = first_key(cfg_.base.sliding_window, start, t);
      pos[i] = static_cast<int32_t>(t) - start;
    }
  }
  resets_.assign(resets.begin(), resets.end());
  for (int64_t b = 0; b < B; ++b) resets_[static_cast<size_t>(b * T)] = 0;  // every row starts from zero anyway
  ops_->upload(s_->resets, resets_.data());
  ops_->upload(s_->pos, pos.data());
  ops_->upload(s_->key_start, key_start.data());
  ops_->upload(s_->key_start_local, key_start_local.data());
  const std::vector<float> zeros(static_cast<size_t>(std::max(s_->zeros.numel(), s_->zero_state.numel())), 0.0f);
  for (const Tensor* t : {&s_->zeros, &s_->zero_state, &s_->zero_x_prev, &s_->dv_first})
    ops_->upload(*t, zeros.data());
}

}  // namespace arwkv
