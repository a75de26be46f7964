// Argument checks shared by every backend (see op_checks.h).
#include "backend/op_checks.h"

namespace arwkv::op_checks {

void on_device(const char* op, Device dev, const Tensor& t, DType dtype) {
  if (t.device != dev) fail("{}: tensor {} is on the wrong device", op, t.shape.str());
  if (t.dtype != dtype)
    fail("{}: tensor {} has dtype {}, expected {}", op, t.shape.str(), dtype_name(t.dtype), dtype_name(dtype));
  if (t.data == nullptr && t.numel() > 0) fail("{}: tensor {} has no data", op, t.shape.str());
}

void matmul(Device dev, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  for (const Tensor* t : {&y, &x, &w}) on_device("matmul", dev, *t, DType::F32);
  if (w.shape.ndim != 2) fail("matmul: weight must be 2-D, got {}", w.shape.str());
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
  on_device("embedding", dev, table, DType::F32);
  on_device("embedding", dev, ids, DType::I32);
  if (table.shape.ndim != 2 || y.cols() != table.dim(1) || y.rows() != ids.numel())
    fail("embedding: y {} from table {} and ids {}", y.shape.str(), table.shape.str(), ids.shape.str());
}

void rmsnorm(Device dev, const Tensor& y, const Tensor& x, const Tensor& w) {
  for (const Tensor* t : {&y, &x, &w}) on_device("rmsnorm", dev, *t, DType::F32);
  if (!(y.shape == x.shape) || w.numel() != x.cols())
    fail("rmsnorm: y {}, x {}, w {}", y.shape.str(), x.shape.str(), w.shape.str());
}

void rope(Device dev, const Tensor& x, const Tensor& pos, int n_heads, int head_dim) {
  on_device("rope", dev, x, DType::F32);
  on_device("rope", dev, pos, DType::I32);
  if (head_dim <= 0 || head_dim % 2 != 0) fail("rope: head_dim {} must be even and positive", head_dim);
  if (x.cols() != int64_t{n_heads} * head_dim || pos.numel() != x.rows())
    fail("rope: x {} with {} heads of {} and pos {}", x.shape.str(), n_heads, head_dim, pos.shape.str());
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

}  // namespace arwkv::op_checks
