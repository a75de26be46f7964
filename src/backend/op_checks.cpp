// Argument checks shared by every backend (see op_checks.h).
#include "backend/op_checks.h"

#include "backend/student_op_checks.h"

namespace arwkv::op_checks {

void on_device(const char* op, Device dev, const Tensor& t, DType dtype) {
  if (t.device != dev) fail("{}: tensor {} is on the wrong device", op, t.shape.str());
  if (t.dtype != dtype)
    fail("{}: tensor {} has dtype {}, expected {}", op, t.shape.str(), dtype_name(t.dtype), dtype_name(dtype));
  if (t.data == nullptr && t.numel() > 0) fail("{}: tensor {} has no data", op, t.shape.str());
}

void weight(const char* op, Device dev, const Tensor& w) {
  on_device(op, dev, w, w.dtype == DType::I32 ? DType::F32 : w.dtype);
  if (w.shape.ndim != 2) fail("{}: weight must be 2-D, got {}", op, w.shape.str());
  if (w.cols() % dtype_block(w.dtype) != 0)
    fail("{}: {} weight {} has rows that are not whole blocks of {}", op, dtype_name(w.dtype), w.shape.str(),
         dtype_block(w.dtype));
}

void matmul(Device dev, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  for (const Tensor* t : {&y, &x}) on_device("matmul", dev, *t, DType::F32);
  weight("matmul", dev, w);
  const int64_t n = w.dim(0), k = w.dim(1);
  if (x.cols() != k || y.cols() != n || y.rows() != x.rows())
    fail("matmul: y {} = x {} · w {}ᵀ does not fit", y.shape.str(), x.shape.str(), w.shape.str());
  if (bias) {
    on_device("matmul", dev, *bias, DType::F32);
    if (bias->numel() != n) fail("matmul: bias {} for {} outputs", bias->shape.str(), n);
  }
}

void embedding(Device dev, const Tensor& y, const Tensor& table, const Tensor& ids) {
  on_device("embedding", dev, y, DType::F32);
  weight("embedding", dev, table);
  on_device("embedding", dev, ids, DType::I32);
  if (y.cols() != table.dim(1) || y.rows() != ids.numel())
    fail("embedding: y {} from table {} and ids {}", y.shape.str(), table.shape.str(), ids.shape.str());
}

void rmsnorm(Device dev, const Tensor& y, const Tensor& x, const Tensor& w) {
  for (const Tensor* t : {&y, &x, &w}) on_device("rmsnorm", dev, *t, DType::F32);
  if (!(y.shape == x.shape) || w.numel() != x.cols())
    fail("rmsnorm: y {}, x {}, w {}", y.shape.str(), x.shape.str(), w.shape.str());
}

void rope(Device dev, const Tensor& x, const Tensor& pos, int n_heads, int head_dim, const Tensor& freq_factors) {
  on_device("rope", dev, x, DType::F32);
  on_device("rope", dev, pos, DType::I32);
  if (head_dim <= 0 || head_dim % 2 != 0) fail("rope: head_dim {} must be even and positive", head_dim);
  if (x.cols() != int64_t{n_heads} * head_dim || pos.numel() != x.rows())
    fail("rope: x {} with {} heads of {} and pos {}", x.shape.str(), n_heads, head_dim, pos.shape.str());
  if (empty(freq_factors)) return;
  on_device("rope", dev, freq_factors, DType::F32);
  if (freq_factors.numel() != head_dim / 2)
    fail("rope: {} frequency factors for heads of {}", freq_factors.numel(), head_dim);
}

void attention(Device dev, const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& key_start, const AttentionArgs& a) {
  for (const Tensor* t : {&out, &q, &k, &v}) on_device("attention", dev, *t, DType::F32);
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.head_dim <= 0 || a.n_heads % a.n_kv_heads != 0)
    fail("attention: {} heads over {} kv heads of size {}", a.n_heads, a.n_kv_heads, a.head_dim);
  const int64_t T = q.rows(), S = k.rows();
  if (q.cols() != int64_t{a.n_heads} * a.head_dim || !(out.shape == q.shape))
    fail("attention: q {} / out {} for {} heads of {}", q.shape.str(), out.shape.str(), a.n_heads, a.head_dim);
  if (k.cols() != int64_t{a.n_kv_heads} * a.head_dim || !(v.shape == k.shape))
    fail("attention: k {} / v {} for {} kv heads of {}", k.shape.str(), v.shape.str(), a.n_kv_heads, a.head_dim);
  if (a.q_offset < 0 || a.q_offset + T > S)
    fail("attention: {} queries at offset {} need {} keys, got {}", T, a.q_offset, a.q_offset + T, S);
  if (!empty(key_start)) {
    on_device("attention", dev, key_start, DType::I32);
    if (key_start.numel() != T) fail("attention: key_start {} for {} queries", key_start.shape.str(), T);
  }
}

void same_shape(const char* op, Device dev, const Tensor& y, const Tensor& a, const Tensor& b) {
  for (const Tensor* t : {&y, &a, &b}) on_device(op, dev, *t, DType::F32);
  if (!(y.shape == a.shape) || !(a.shape == b.shape))
    fail("{}: shapes {}, {}, {} differ", op, y.shape.str(), a.shape.str(), b.shape.str());
}

void wkv7(Device dev, const Tensor& y, const Tensor& state, const Tensor& r, const Tensor& w, const Tensor& k,
          const Tensor& v, const Tensor& a, const Tensor& b, const Tensor* reset) {
  const char* op = reset ? "wkv7_forward" : "wkv7_decode";
  for (const Tensor* t : {&y, &state, &r, &w, &k, &v, &a, &b}) on_device(op, dev, *t, DType::F32);
  const int want_dims = reset ? 3 : 2;
  if (r.shape.ndim != want_dims) fail("{}: inputs must be {}-D, got {}", op, want_dims, r.shape.str());
  for (const Tensor* t : {&y, &w, &k, &v, &a, &b})
    if (!(t->shape == r.shape)) fail("{}: {} does not match r {}", op, t->shape.str(), r.shape.str());
  const int64_t B = r.dim(0), C = r.cols();
  if (state.shape.ndim != 4 || state.dim(0) != B || state.dim(2) != state.dim(3) || state.dim(1) * state.dim(2) != C)
    fail("{}: state {} does not fit inputs {} (want [B, H, N, N] with H·N = C)", op, state.shape.str(), r.shape.str());
  if (reset && !empty(*reset)) {
    on_device(op, dev, *reset, DType::I32);
    if (reset->numel() != B * r.dim(1)) fail("{}: reset {} for inputs {}", op, reset->shape.str(), r.shape.str());
  }
}

void wkv7_backward(Device dev, const Wkv7Grads& d, const Tensor& dy, const Tensor& state_in, const Tensor& r,
                   const Tensor& w, const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                   const Tensor& reset) {
  const char* op = "wkv7_backward";
  for (const Tensor* t : {&dy, &state_in, &r, &w, &k, &v, &a, &b, &d.dr, &d.dw, &d.dk, &d.dv, &d.da, &d.db})
    on_device(op, dev, *t, DType::F32);
  if (r.shape.ndim != 3) fail("{}: inputs must be [B, T, C], got {}", op, r.shape.str());
  for (const Tensor* t : {&dy, &w, &k, &v, &a, &b, &d.dr, &d.dw, &d.dk, &d.dv, &d.da, &d.db})
    if (!(t->shape == r.shape)) fail("{}: {} does not match r {}", op, t->shape.str(), r.shape.str());
  const int64_t B = r.dim(0), C = r.cols();
  const Tensor& s = state_in;
  if (s.shape.ndim != 4 || s.dim(0) != B || s.dim(2) != s.dim(3) || s.dim(1) * s.dim(2) != C)
    fail("{}: state_in {} does not fit inputs {} (want [B, H, N, N] with H·N = C)", op, s.shape.str(), r.shape.str());
  if (!empty(d.dstate)) {
    on_device(op, dev, d.dstate, DType::F32);
    if (!(d.dstate.shape == s.shape)) fail("{}: dstate {} does not match state_in {}", op, d.dstate.shape.str(), s.shape.str());
  }
  if (!empty(reset)) {
    on_device(op, dev, reset, DType::I32);
    if (reset.numel() != B * r.dim(1)) fail("{}: reset {} for inputs {}", op, reset.shape.str(), r.shape.str());
  }
}

// ---- Training ops ---------------------------------------------------------------------------------

namespace {

// An optional gradient: empty, or an F32 tensor of want's shape (or of n values when n >= 0).
void grad_like(const char* op, Device dev, const Tensor& g, const Tensor& want, int64_t n = -1) {
  if (empty(g)) return;
  on_device(op, dev, g, DType::F32);
  if (n >= 0 ? g.numel() != n : !(g.shape == want.shape))
    fail("{}: gradient {} does not match {}", op, g.shape.str(), n >= 0 ? Shape{n}.str() : want.shape.str());
}

// A gradient that must be given, shaped like want.
void grad_of(const char* op, Device dev, const Tensor& g, const Tensor& want) {
  if (empty(g) && want.numel() > 0) fail("{}: gradient for {} missing", op, want.shape.str());
  grad_like(op, dev, g, want);
}

}  // namespace

void matmul_backward(Device dev, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                     const Tensor& x, const Tensor& w) {
  matmul(dev, dy, x, w, nullptr);
  grad_like("matmul_backward", dev, dx, x);
  if (!empty(dw) && w.dtype != DType::F32)
    fail("matmul_backward: a {} weight {} is frozen: it has no weight gradient", dtype_name(w.dtype), w.shape.str());
  grad_like("matmul_backward", dev, dw, w);
  grad_like("matmul_backward", dev, db, w, w.dim(0));
}

void embedding_backward(Device dev, const Tensor& dtable, const Tensor& dy, const Tensor& ids) {
  on_device("embedding_backward", dev, dtable, DType::F32);
  embedding(dev, dy, dtable, ids);
}

void rmsnorm_backward(Device dev, const Tensor& dx, const Tensor& dw, const Tensor& dy, const Tensor& x,
                      const Tensor& w) {
  rmsnorm(dev, dy, x, w);
  grad_like("rmsnorm_backward", dev, dx, x);
  grad_like("rmsnorm_backward", dev, dw, w);
}

void token_shift_backward(Device dev, const Tensor& dx, const Tensor& dx_prev, const Tensor& dmix,
                          const Tensor& dout, const Tensor& x, const Tensor& x_prev, const Tensor& mix,
                          const Tensor& reset) {
  token_shift(dev, dout, x, x_prev, mix, reset);
  grad_of("token_shift_backward", dev, dx, x);
  grad_like("token_shift_backward", dev, dx_prev, x_prev);
  grad_like("token_shift_backward", dev, dmix, mix);
}

void wkv7_prepare_backward(Device dev, const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d) {
  const char* op = "wkv7_prepare_backward";
  Wkv7PrepareArgs outputs_unused = f;  // the forward's outputs w, a, b are not read
  outputs_unused.w = outputs_unused.a = outputs_unused.b = f.k;
  wkv7_prepare(dev, outputs_unused);
  for (const Tensor* g : {&d.dw, &d.da, &d.db, &d.dk, &d.dv, &d.dw_logit, &d.da_logit}) grad_of(op, dev, *g, f.k);
  if (empty(f.v_first) != (empty(d.dv_first) || empty(d.dv_logit)))
    fail("{}: dv_first and dv_logit are needed exactly when the forward had v_first", op);
  grad_like(op, dev, d.dv_first, f.k);
  grad_like(op, dev, d.dv_logit, f.k);
  grad_like(op, dev, d.dk_k, f.k_k, f.k.cols());
  grad_like(op, dev, d.dk_a, f.k_a, f.k.cols());
}

void wkv7_output_backward(Device dev, const Wkv7OutputGrads& d, const Tensor& y, const Tensor& r, const Tensor& k,
                          const Tensor& v, const Tensor& r_k, const Tensor& g, const Tensor& ln_w,
                          const Tensor& ln_b) {
  const char* op = "wkv7_output_backward";
  wkv7_output(dev, y, r, k, v, r_k, g, ln_w, ln_b);
  for (const Tensor* t : {&d.dy, &d.dr, &d.dk, &d.dv}) grad_of(op, dev, *t, y);
  if (empty(g) != empty(d.dg)) fail("{}: dg is needed exactly when the forward had a gate", op);
  grad_like(op, dev, d.dg, y);
  grad_like(op, dev, d.dr_k, r_k);
  grad_like(op, dev, d.dln_w, y, y.cols());
  grad_like(op, dev, d.dln_b, y, y.cols());
  if (!empty(d.dln_w) && empty(ln_w)) fail("{}: dln_w without group norm", op);
}

void loss_rows(const char* op, Device dev, const Tensor& loss, const Tensor& dscores, const Tensor& scores,
               const Tensor& mask) {
  on_device(op, dev, scores, DType::F32);
  on_device(op, dev, loss, DType::F32);
  if (loss.numel() != scores.rows()) fail("{}: loss {} for {} rows", op, loss.shape.str(), scores.rows());
  grad_like(op, dev, dscores, scores);
  if (!empty(mask)) {
    on_device(op, dev, mask, DType::I32);
    if (mask.numel() != scores.rows()) fail("{}: mask {} for {} rows", op, mask.shape.str(), scores.rows());
  }
}

void adamw_step(Device dev, const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, int64_t step) {
  for (const Tensor* t : {&grad, &m, &v}) grad_of("adamw_step", dev, *t, param);
  on_device("adamw_step", dev, param, DType::F32);
  if (step < 1) fail("adamw_step: step {} (steps count from 1)", step);
}

}  // namespace arwkv::op_checks
