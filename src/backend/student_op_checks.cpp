// Argument checks of the student time-mixing ops (see student_op_checks.h).
#include "backend/student_op_checks.h"

#include "backend/op_checks.h"

namespace arwkv::op_checks {
namespace {

void rows_like(const char* op, Device dev, const Tensor& ref, std::initializer_list<const Tensor*> ts) {
  on_device(op, dev, ref, DType::F32);
  for (const Tensor* t : ts) {
    on_device(op, dev, *t, DType::F32);
    if (!(t->shape == ref.shape)) fail("{}: tensor {} does not match {}", op, t->shape.str(), ref.shape.str());
  }
}

void vector_of(const char* op, Device dev, const Tensor& t, int64_t n) {
  on_device(op, dev, t, DType::F32);
  if (t.numel() != n) fail("{}: tensor {} must hold {} values", op, t.shape.str(), n);
}

}  // namespace

void token_shift(Device dev, const Tensor& out, const Tensor& x, const Tensor& x_prev, const Tensor& mix,
                 const Tensor& reset) {
  for (const Tensor* t : {&out, &x, &x_prev, &mix}) on_device("token_shift", dev, *t, DType::F32);
  if (x.shape.ndim != 3) fail("token_shift: x must be [B, T, C], got {}", x.shape.str());
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  if (mix.shape.ndim != 2 || mix.dim(1) != C) fail("token_shift: mix {} for x {}", mix.shape.str(), x.shape.str());
  if (!(out.shape == Shape{mix.dim(0), B, T, C}))
    fail("token_shift: out {} for {} mixes of x {}", out.shape.str(), mix.dim(0), x.shape.str());
  if (x_prev.numel() != B * C) fail("token_shift: x_prev {} for x {}", x_prev.shape.str(), x.shape.str());
  if (!empty(reset)) {
    on_device("token_shift", dev, reset, DType::I32);
    if (reset.numel() != B * T) fail("token_shift: reset {} for x {}", reset.shape.str(), x.shape.str());
  }
}

void unary(const char* op, Device dev, const Tensor& y, const Tensor& x) { rows_like(op, dev, x, {&y}); }

void wkv7_prepare(Device dev, const Wkv7PrepareArgs& a) {
  const char* op = "wkv7_prepare";
  rows_like(op, dev, a.k, {&a.w, &a.a, &a.b, &a.v, &a.w_logit, &a.a_logit});
  const int64_t C = a.k.cols();
  if (a.head_size <= 0 || C % a.head_size != 0) fail("{}: {} channels in heads of {}", op, C, a.head_size);
  if (empty(a.v_first) != empty(a.v_logit)) fail("{}: v_first and v_logit must both be given or both empty", op);
  if (!empty(a.v_first)) rows_like(op, dev, a.k, {&a.v_first, &a.v_logit});
  vector_of(op, dev, a.k_k, C);
  vector_of(op, dev, a.k_a, C);
}

void wkv7_output(Device dev, const Tensor& y, const Tensor& r, const Tensor& k, const Tensor& v, const Tensor& r_k,
                 const Tensor& g, const Tensor& ln_w, const Tensor& ln_b) {
  const char* op = "wkv7_output";
  rows_like(op, dev, y, {&r, &k, &v});
  on_device(op, dev, r_k, DType::F32);
  const int64_t C = y.cols();
  if (r_k.shape.ndim != 2 || r_k.dim(0) * r_k.dim(1) != C)
    fail("{}: r_k {} must be [H, N] with H·N = {}", op, r_k.shape.str(), C);
  if (!empty(g)) rows_like(op, dev, y, {&g});
  if (empty(ln_w) != empty(ln_b)) fail("{}: group norm needs both ln_w and ln_b", op);
  if (!empty(ln_w)) {
    vector_of(op, dev, ln_w, C);
    vector_of(op, dev, ln_b, C);
  }
}

}  // namespace arwkv::op_checks
