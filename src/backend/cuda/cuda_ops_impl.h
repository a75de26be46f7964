// The CUDA backend's Ops: argument checks (op_checks, shared with every backend), the host-side
// checks of index tensors, launch shapes, cuBLAS GEMMs and the kernels of kernels.h and
// wkv7_kernels.h. Included inside the backend's namespace, after its runtime (rt) and the kernels,
// by cuda_ops.cu (the GPU) and cuda_ops_emulated.cpp (the CPU emulation used by the tests).
// Needs (included by the TU first): <algorithm>, <cmath>, <type_traits>, <vector>, backend/op_checks.h,
// backend/student_op_checks.h.
#pragma once

namespace chk = ::arwkv::op_checks;

constexpr unsigned kFlatBlock = 256;

inline float* f32p(const Tensor& t) { return t.data && t.numel() ? static_cast<float*>(t.data) : nullptr; }
inline const int32_t* i32p(const Tensor& t) { return t.data && t.numel() ? static_cast<const int32_t*>(t.data) : nullptr; }

inline rt::Grid flat_grid(int64_t n) {
  const int64_t blocks = (n + kFlatBlock - 1) / kFlatBlock;
  return rt::Grid{static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, rt::kMaxFlatBlocks))};
}
inline rt::Grid row_grid(int64_t rows) {
  return rt::Grid{static_cast<unsigned>(std::clamp<int64_t>(rows, 1, 65535))};
}
inline unsigned pow2_at_least(int64_t n) {
  unsigned p = 1;
  while (p < n) p <<= 1;
  return p;
}

class GpuOps final : public Ops {
 public:
  GpuOps() { rt::init(); }
  const char* name() const override { return rt::kBackendName; }
  Device device() const override { return Device::CUDA; }

  Buffer alloc(size_t bytes) override { return Buffer(rt::alloc_device(bytes), bytes, Device::CUDA, rt::free_device); }
  void upload(Tensor dst, const void* host_src) override {
    chk::on_device("upload", Device::CUDA, dst, dst.dtype);
    rt::copy_to_device(dst.data, host_src, dst.nbytes());
  }
  void download(void* host_dst, Tensor src) override {
    chk::on_device("download", Device::CUDA, src, src.dtype);
    rt::copy_to_host(host_dst, src.data, src.nbytes());
  }
  void synchronize() override { rt::synchronize(); }

  void matmul(Tensor y, Tensor x, Tensor w, const Tensor* bias, bool accumulate) override {
    chk::matmul(Device::CUDA, y, x, w, bias);
    const int64_t M = x.rows(), K = x.cols(), N = w.dim(0);
    if (M == 0 || N == 0) return;
    if (w.dtype != DType::F32 && K > 0) {  // tiles of dequantised weight rows, each one GEMM into y[:, a:b]
      for_weight_tiles(w, 0, N, [&](const float* tile, int64_t a, int64_t b) {
        rt::gemm(true, false, int_of(b - a), int_of(M), int_of(K), 1.0f, tile, int_of(K), f32p(x), int_of(K),
                 accumulate ? 1.0f : 0.0f, f32p(y) + a, int_of(N));
      });
    } else if (K == 0) {
      if (!accumulate) rt::zero_device(y.data, y.nbytes());
    } else {  // row-major y = x·wᵀ is column-major yᵀ = wᵀ'·x' with w' = w seen column-major (K×N)
      rt::gemm(true, false, int_of(N), int_of(M), int_of(K), 1.0f, f32p(w), int_of(K), f32p(x), int_of(K),
               accumulate ? 1.0f : 0.0f, f32p(y), int_of(N));
    }
    if (bias) flat(&k_add_bias, M * N, f32p(y), f32p(*bias), M, N);
  }

  void embedding(Tensor y, Tensor table, Tensor ids) override {
    chk::embedding(Device::CUDA, y, table, ids);
    check_ids("embedding", ids, table.dim(0));
    if (table.dtype != DType::F32)
      return flat(&k_embedding_compact, y.numel(), f32p(y), static_cast<const uint8_t*>(table.data), i32p(ids),
                  table.dtype, row_bytes(table), block_of(table), block_bytes_of(table), ids.numel(), table.dim(1));
    flat(&k_embedding, y.numel(), f32p(y), f32p(table), i32p(ids), ids.numel(), table.dim(1));
  }

  void rmsnorm(Tensor y, Tensor x, Tensor w, float eps) override {
    chk::rmsnorm(Device::CUDA, y, x, w);
    rt::launch(&k_rmsnorm, row_grid(x.rows()), rt::Grid{256}, 0, true, f32p(y), f32p(x), f32p(w), x.rows(), x.cols(),
               eps);
  }

  void rope(Tensor x, Tensor pos, int n_heads, int head_dim, float theta, Tensor freq_factors) override {
    chk::rope(Device::CUDA, x, pos, n_heads, head_dim, freq_factors);
    const float* factors = chk::empty(freq_factors) ? nullptr : f32p(freq_factors);
    flat(&k_rope, x.rows() * n_heads * (head_dim / 2), f32p(x), i32p(pos), x.rows(), x.cols(), n_heads, head_dim,
         theta, factors);
  }

  void attention(Tensor out, Tensor q, Tensor k, Tensor v, Tensor key_start, const AttentionArgs& a) override {
    chk::attention(Device::CUDA, out, q, k, v, key_start, a);
    if (a.head_dim > 2 * kAttnTile) fail("attention: head_dim {} > {} is not supported by the CUDA backend", a.head_dim, 2 * kAttnTile);
    const int64_t T = q.rows();
    if (!chk::empty(key_start)) {
      const std::vector<int32_t> first = host_ints(key_start);
      for (int64_t t = 0; t < T; ++t)
        if (first[t] < 0 || first[t] > a.q_offset + t)
          fail("attention: key_start {} for query at {}", first[t], a.q_offset + t);
    }
    if (T == 0) return;
    if (a.head_dim <= kAttnMaxDim) {
      const unsigned tiles = static_cast<unsigned>((T + kAttnQ - 1) / kAttnQ);
      rt::launch(&k_attention_tiled, rt::Grid{tiles, static_cast<unsigned>(a.n_heads)}, rt::Grid{kAttnQ * 8}, 0, true,
                 f32p(out), f32p(q), f32p(k), f32p(v), i32p(key_start), T, q.cols(), k.cols(), out.cols(), a.head_dim,
                 a.n_heads / a.n_kv_heads, a.q_offset, chk::attention_scale(a));
      return;
    }
    rt::launch(&k_attention, rt::Grid{static_cast<unsigned>(T), static_cast<unsigned>(a.n_heads)}, rt::Grid{kAttnTile},
               0, true, f32p(out), f32p(q), f32p(k), f32p(v), i32p(key_start), q.cols(), k.cols(), out.cols(),
               a.head_dim, a.n_heads / a.n_kv_heads, a.q_offset, chk::attention_scale(a));
  }

  void glu(Tensor y, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu", Device::CUDA, y, gate, up);
    flat(&k_glu, y.numel(), f32p(y), f32p(gate), f32p(up), y.numel(), int{act == Activation::GeluTanh});
  }
  void add(Tensor y, Tensor a, Tensor b) override {
    chk::same_shape("add", Device::CUDA, y, a, b);
    flat(&k_add, y.numel(), f32p(y), f32p(a), f32p(b), y.numel());
  }
  void copy(Tensor dst, Tensor src) override {
    chk::on_device("copy", Device::CUDA, dst, dst.dtype);  // a host pointer would fault on the GPU
    chk::on_device("copy", Device::CUDA, src, src.dtype);
    if (dst.nbytes() != src.nbytes() || dst.dtype != src.dtype)
      fail("copy: {} {} into {} {}", dtype_name(src.dtype), src.shape.str(), dtype_name(dst.dtype), dst.shape.str());
    if (dst.data != src.data) rt::copy_on_device(dst.data, src.data, src.nbytes());
  }

  // ---- RWKV-7 ------------------------------------------------------------------------------------
  void wkv7_forward(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
                    Tensor reset) override {
    chk::wkv7(Device::CUDA, y, state, r, w, k, v, a, b, &reset);
    run_wkv7(y, state, r, w, k, v, a, b, reset, r.dim(0), r.dim(1));
  }
  void wkv7_decode(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) override {
    chk::wkv7(Device::CUDA, y, state, r, w, k, v, a, b, nullptr);
    run_wkv7(y, state, r, w, k, v, a, b, Tensor{}, r.dim(0), 1);
  }
  void wkv7_backward(const Wkv7Grads& d, Tensor dy, Tensor state_in, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a,
                     Tensor b, Tensor reset) override {
    chk::wkv7_backward(Device::CUDA, d, dy, state_in, r, w, k, v, a, b, reset);
    const int64_t B = r.dim(0), T = r.dim(1), C = r.dim(2), H = state_in.dim(1), N = state_in.dim(2);
    if (B == 0 || T == 0) return;
    const int64_t chunks = (T + kWkvChunk - 1) / kWkvChunk;
    float* scratch = scratch_floats(B * H * (chunks + kWkvChunk) * N * N);
    float *snaps = scratch, *chunk = scratch + B * H * chunks * N * N;
    with_nmax(N, [&](auto nmax) {
      const rt::Grid grid{static_cast<unsigned>(B * H)}, block{static_cast<unsigned>(nmax())};
      rt::launch(&k_wkv7_backward<nmax()>, grid, block, 0, true, f32p(d.dr), f32p(d.dw), f32p(d.dk), f32p(d.dv),
                 f32p(d.da), f32p(d.db), f32p(d.dstate), f32p(dy), f32p(state_in), f32p(r), f32p(w), f32p(k), f32p(v),
                 f32p(a), f32p(b), i32p(reset), T, static_cast<int>(H), static_cast<int>(N), C, snaps, chunk);
    });
  }

  void token_shift(Tensor out, Tensor x, Tensor x_prev, Tensor mix, Tensor reset) override {
    chk::token_shift(Device::CUDA, out, x, x_prev, mix, reset);
    const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
    if (T == 0) return;
    flat(&k_token_shift, out.numel(), f32p(out), f32p(x), f32p(x_prev), f32p(mix), i32p(reset), P, B, T, C);
    flat(&k_store_last, B * C, f32p(x_prev), f32p(x), B, T, C);
  }
  void tanh(Tensor y, Tensor x) override {
    chk::unary("tanh", Device::CUDA, y, x);
    flat(&k_tanh, y.numel(), f32p(y), f32p(x), y.numel());
  }
  void sigmoid(Tensor y, Tensor x) override {
    chk::unary("sigmoid", Device::CUDA, y, x);
    flat(&k_sigmoid, y.numel(), f32p(y), f32p(x), y.numel());
  }
  void wkv7_prepare(const Wkv7PrepareArgs& p) override {
    chk::wkv7_prepare(Device::CUDA, p);
    const int64_t R = p.k.rows(), C = p.k.cols(), N = p.head_size;
    per_head(&k_wkv7_prepare, R, C, N, f32p(p.w), f32p(p.a), f32p(p.b), f32p(p.k), f32p(p.v), f32p(p.w_logit),
             f32p(p.a_logit), f32p(p.v_first), f32p(p.v_logit), f32p(p.k_k), f32p(p.k_a), C, static_cast<int>(N));
  }
  void wkv7_output(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,
                   float eps) override {
    chk::wkv7_output(Device::CUDA, y, r, k, v, r_k, g, ln_w, ln_b);
    const int64_t R = y.rows(), C = y.cols(), N = r_k.dim(1);
    per_head(&k_wkv7_output, R, C, N, f32p(y), f32p(r), f32p(k), f32p(v), f32p(r_k), f32p(g), f32p(ln_w), f32p(ln_b),
             eps, C, static_cast<int>(N));
  }

  // ---- training ----------------------------------------------------------------------------------
  void matmul_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, bool accumulate_dx) override {
    chk::matmul_backward(Device::CUDA, dx, dw, db, dy, x, w);
    const int64_t M = dy.rows(), N = dy.cols(), K = x.cols();
    if (N == 0 || K == 0) return;
    if (f32p(dx) && M > 0 && w.dtype != DType::F32) {  // a frozen compact w: dx = Σ_tiles dy[:, a:b]·w[a:b, :]
      bool first = true;
      for_weight_tiles(w, 0, N, [&](const float* tile, int64_t a, int64_t b) {
        rt::gemm(false, false, int_of(K), int_of(M), int_of(b - a), 1.0f, tile, int_of(K), f32p(dy) + a, int_of(N),
                 accumulate_dx || !first ? 1.0f : 0.0f, f32p(dx), int_of(K));
        first = false;
      });
    } else if (f32p(dx) && M > 0)  // dxᵀ = wᵀ·dyᵀ (column-major: w is K×N, dy is N×M)
      rt::gemm(false, false, int_of(K), int_of(M), int_of(N), 1.0f, f32p(w), int_of(K), f32p(dy), int_of(N),
               accumulate_dx ? 1.0f : 0.0f, f32p(dx), int_of(K));
    if (f32p(dw) && M > 0)  // dwᵀ += xᵀ·dy (column-major: x is K×M, dy is N×M read transposed)
      rt::gemm(false, true, int_of(K), int_of(N), int_of(M), 1.0f, f32p(x), int_of(K), f32p(dy), int_of(N), 1.0f,
               f32p(dw), int_of(K));
    if (f32p(db)) flat(&k_column_sums, N, f32p(db), f32p(dy), M, N);
  }
  void embedding_backward(Tensor dtable, Tensor dy, Tensor ids) override {
    chk::embedding_backward(Device::CUDA, dtable, dy, ids);
    check_ids("embedding_backward", ids, dtable.dim(0));
    flat(&k_embedding_backward, dy.numel(), f32p(dtable), f32p(dy), i32p(ids), ids.numel(), dtable.dim(1));
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, float eps, bool accumulate_dx) override {
    chk::rmsnorm_backward(Device::CUDA, dx, dw, dy, x, w);
    rt::launch(&k_rmsnorm_backward, row_grid(x.rows()), rt::Grid{256}, 0, true, f32p(dx), f32p(dw), f32p(dy), f32p(x),
               f32p(w), x.rows(), x.cols(), eps, accumulate_dx);
  }
  void glu_backward(Tensor dgate, Tensor dup, Tensor dy, Tensor gate, Tensor up, Activation act) override {
    chk::same_shape("glu_backward", Device::CUDA, dy, gate, up);
    chk::same_shape("glu_backward", Device::CUDA, dy, dgate, dup);
    flat(&k_glu_backward, dy.numel(), f32p(dgate), f32p(dup), f32p(dy), f32p(gate), f32p(up), dy.numel(),
         int{act == Activation::GeluTanh});
  }
  void token_shift_backward(Tensor dx, Tensor dx_prev, Tensor dmix, Tensor dout, Tensor x, Tensor x_prev, Tensor mix,
                            Tensor reset) override {
    chk::token_shift_backward(Device::CUDA, dx, dx_prev, dmix, dout, x, x_prev, mix, reset);
    const int64_t P = mix.dim(0), B = x.dim(0), T = x.dim(1), C = x.dim(2);
    if (T == 0) return;
    flat(&k_token_shift_backward_dx, B * T * C, f32p(dx), f32p(dx_prev), f32p(dout), f32p(mix), i32p(reset), P, B, T, C);
    if (f32p(dmix))
      flat(&k_token_shift_backward_dmix, P * C, f32p(dmix), f32p(dout), f32p(x), f32p(x_prev), i32p(reset), P, B, T, C);
    if (f32p(dx_prev))
      flat(&k_token_shift_backward_dx_prev, B * C, f32p(dx_prev), f32p(dout), f32p(mix), i32p(reset), P, B, T, C);
  }
  void tanh_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("tanh_backward", Device::CUDA, dx, dy, y);
    flat(&k_tanh_backward, y.numel(), f32p(dx), f32p(dy), f32p(y), y.numel());
  }
  void sigmoid_backward(Tensor dx, Tensor dy, Tensor y) override {
    chk::same_shape("sigmoid_backward", Device::CUDA, dx, dy, y);
    flat(&k_sigmoid_backward, y.numel(), f32p(dx), f32p(dy), f32p(y), y.numel());
  }
  void wkv7_prepare_backward(const Wkv7PrepareArgs& f, const Wkv7PrepareGrads& d) override {
    chk::wkv7_prepare_backward(Device::CUDA, f, d);
    const int64_t R = f.k.rows(), C = f.k.cols(), N = f.head_size;
    per_head(&k_wkv7_prepare_backward, R, C, N, f32p(f.k), f32p(f.v), f32p(f.w_logit), f32p(f.a_logit),
             f32p(f.v_first), f32p(f.v_logit), f32p(f.k_k), f32p(f.k_a), f32p(d.dw), f32p(d.da), f32p(d.db), f32p(d.dk),
             f32p(d.dv), f32p(d.dw_logit), f32p(d.da_logit), f32p(d.dv_first), f32p(d.dv_logit), f32p(d.dk_k),
             f32p(d.dk_a), C, static_cast<int>(N));
  }
  void wkv7_output_backward(const Wkv7OutputGrads& d, Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g,
                            Tensor ln_w, Tensor ln_b, float eps) override {
    chk::wkv7_output_backward(Device::CUDA, d, y, r, k, v, r_k, g, ln_w, ln_b);
    const int64_t R = y.rows(), C = y.cols(), N = r_k.dim(1);
    per_head(&k_wkv7_output_backward, R, C, N, f32p(d.dy), f32p(d.dr), f32p(d.dk), f32p(d.dv), f32p(d.dr_k),
             f32p(d.dg), f32p(d.dln_w), f32p(d.dln_b), f32p(y), f32p(r), f32p(k), f32p(v), f32p(r_k), f32p(g),
             f32p(ln_w), f32p(ln_b), eps, C, static_cast<int>(N));
  }

  void cross_entropy(Tensor loss, Tensor dlogits, Tensor logits, Tensor targets, Tensor mask, float grad_scale) override {
    chk::loss_rows("cross_entropy", Device::CUDA, loss, dlogits, logits, mask);
    chk::on_device("cross_entropy", Device::CUDA, targets, DType::I32);
    if (targets.numel() != logits.rows()) fail("cross_entropy: targets {} for {} rows", targets.shape.str(), logits.rows());
    const int64_t R = logits.rows(), V = logits.cols();
    const std::vector<int32_t> tg = host_ints(targets), mk = host_ints(mask);
    for (int64_t r = 0; r < R; ++r)
      if ((mk.empty() || mk[r] != 0) && (tg[r] < 0 || tg[r] >= V))
        fail("cross_entropy: target {} outside the vocabulary of {}", tg[r], V);
    rt::launch(&k_cross_entropy, row_grid(R), rt::Grid{kLossBlock}, 0, true, f32p(loss), f32p(dlogits), f32p(logits),
               i32p(targets), i32p(mask), R, V, grad_scale);
  }
  void kl_div(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_logits, Tensor mask, float temperature,
              float grad_scale) override {
    chk::loss_rows("kl_div", Device::CUDA, loss, dlogits, logits, mask);
    chk::same_shape("kl_div", Device::CUDA, logits, logits, teacher_logits);
    rt::launch(&k_kl_div, row_grid(logits.rows()), rt::Grid{kLossBlock}, 0, true, f32p(loss), f32p(dlogits),
               f32p(logits), f32p(teacher_logits), i32p(mask), logits.rows(), logits.cols(), temperature, grad_scale);
  }
  void kl_div_topk(Tensor loss, Tensor dlogits, Tensor logits, Tensor teacher_ids, Tensor teacher_logits, Tensor mask,
                   float temperature, float grad_scale) override {
    chk::loss_rows("kl_div_topk", Device::CUDA, loss, dlogits, logits, mask);
    chk::on_device("kl_div_topk", Device::CUDA, teacher_ids, DType::I32);
    chk::on_device("kl_div_topk", Device::CUDA, teacher_logits, DType::F32);
    if (!(teacher_ids.shape == teacher_logits.shape) || teacher_ids.rows() != logits.rows())
      fail("kl_div_topk: teacher ids {} and logits {} for {} rows", teacher_ids.shape.str(),
           teacher_logits.shape.str(), logits.rows());
    const int64_t R = logits.rows(), V = logits.cols(), K = teacher_ids.cols();
    const std::vector<int32_t> ids = host_ints(teacher_ids), mk = host_ints(mask);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t q = 0; q < K && (mk.empty() || mk[r] != 0); ++q)
        if (ids[r * K + q] < 0 || ids[r * K + q] >= V)
          fail("kl_div_topk: teacher id {} outside the vocabulary of {}", ids[r * K + q], V);
    rt::launch(&k_kl_div_topk, row_grid(R), rt::Grid{kLossBlock}, 0, true, f32p(loss), f32p(dlogits), f32p(logits),
               i32p(teacher_ids), f32p(teacher_logits), i32p(mask), R, V, K, temperature, grad_scale);
  }
  void align_loss(Tensor loss, Tensor dstudent, Tensor student, Tensor teacher, Tensor mask, float grad_scale) override {
    chk::loss_rows("align_loss", Device::CUDA, loss, dstudent, student, mask);
    chk::same_shape("align_loss", Device::CUDA, student, student, teacher);
    rt::launch(&k_align_loss, row_grid(student.rows()), rt::Grid{kLossBlock}, 0, true, f32p(loss), f32p(dstudent),
               f32p(student), f32p(teacher), i32p(mask), student.rows(), student.cols(), grad_scale);
  }

  void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) override {
    chk::adamw_step(Device::CUDA, param, grad, m, v, step);
    const double c1 = 1.0 - std::pow(double{beta1}, static_cast<double>(step));
    const double c2 = 1.0 - std::pow(double{beta2}, static_cast<double>(step));
    flat(&k_adamw, param.numel(), f32p(param), f32p(grad), f32p(m), f32p(v), lr, beta1, beta2, eps, weight_decay, c1,
         c2, param.numel());
  }
  void sum_squares(Tensor acc, Tensor x) override {
    chk::on_device("sum_squares", Device::CUDA, acc, DType::F32);
    chk::on_device("sum_squares", Device::CUDA, x, DType::F32);
    if (acc.numel() != 1) fail("sum_squares: accumulator {} must hold one value", acc.shape.str());
    if (x.numel() == 0) return;
    rt::Grid g = flat_grid(x.numel());
    g.x = std::min(g.x, 256u);
    rt::launch(&k_sum_squares, g, rt::Grid{256}, 0, true, f32p(acc), f32p(x), x.numel());
  }
  void scale(Tensor x, float s) override {
    chk::on_device("scale", Device::CUDA, x, DType::F32);
    flat(&k_scale, x.numel(), f32p(x), s, x.numel());
  }

 private:
  Buffer scratch_;
  Buffer tile_;  // dequantised rows of a compact weight

  // A compact weight's tiles hold at most this many floats (16 MiB on the device).
  static constexpr int64_t kTileFloats = int64_t{1} << 22;

  static int64_t row_bytes(const Tensor& w) { return static_cast<int64_t>(dtype_row_bytes(w.dtype, w.cols())); }
  static int block_of(const Tensor& w) { return static_cast<int>(dtype_block(w.dtype)); }
  static int block_bytes_of(const Tensor& w) { return static_cast<int>(dtype_block_bytes(w.dtype)); }

  // Calls f(tile, a, b) for consecutive row ranges [a, b) of rows [r0, r1) of the compact weight w,
  // tile holding rows a..b dequantised to fp32 on the device (row after row, K floats each).
  template <typename F>
  void for_weight_tiles(const Tensor& w, int64_t r0, int64_t r1, F f) {
    const int64_t K = w.cols(), step = std::max<int64_t>(1, std::min(r1 - r0, kTileFloats / std::max<int64_t>(K, 1)));
    const size_t bytes = static_cast<size_t>(step * K) * sizeof(float);
    if (tile_.size() < bytes) {
      tile_ = Buffer();
      tile_ = alloc(bytes);
    }
    float* tile = static_cast<float*>(tile_.data());
    for (int64_t a = r0; a < r1; a += step) {
      const int64_t b = std::min(r1, a + step);
      flat(&k_dequantize_rows, (b - a) * K, tile, static_cast<const uint8_t*>(w.data), w.dtype, row_bytes(w),
           block_of(w), block_bytes_of(w), a, b - a, K);
      f(tile, a, b);
    }
  }

  static int int_of(int64_t n) {
    if (n > 0x7fffffff) fail("{}: dimension {} exceeds cuBLAS's 32-bit sizes", rt::kBackendName, n);
    return static_cast<int>(n);
  }

  template <typename Kernel, typename... Args>
  static void flat(Kernel kernel, int64_t n, Args... args) {
    if (n > 0) rt::launch(kernel, flat_grid(n), rt::Grid{kFlatBlock}, 0, false, args...);
  }

  // Grid (rows, heads), a power-of-two block of at least N threads, N doubles of shared memory each.
  template <typename Kernel, typename... Args>
  static void per_head(Kernel kernel, int64_t R, int64_t C, int64_t N, Args... args) {
    if (N > 1024) fail("{}: head size {} > 1024", rt::kBackendName, N);
    if (R == 0 || C == 0) return;
    const unsigned threads = pow2_at_least(N);
    rt::launch(kernel, rt::Grid{static_cast<unsigned>(R), static_cast<unsigned>(C / N)}, rt::Grid{threads},
               threads * sizeof(double), true, args...);
  }

  // Calls f(std::integral_constant<int, NMAX>) with the WKV-7 kernels' block size for head size N.
  template <typename F>
  static void with_nmax(int64_t N, F f) {
    if (N > 128) fail("wkv7: head size {} > 128 is not supported by the {} backend", N, rt::kBackendName);
    if (N <= 16) f(std::integral_constant<int, 16>{});
    else if (N <= 32) f(std::integral_constant<int, 32>{});
    else if (N <= 64) f(std::integral_constant<int, 64>{});
    else f(std::integral_constant<int, 128>{});
  }

  void run_wkv7(Tensor y, Tensor state, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor reset,
                int64_t B, int64_t T) {
    const int64_t H = state.dim(1), N = state.dim(2), C = H * N;
    if (B == 0 || T == 0) return;
    with_nmax(N, [&](auto nmax) {
      const rt::Grid grid{static_cast<unsigned>(B * H)}, block{static_cast<unsigned>(nmax())};
      rt::launch(&k_wkv7_forward<nmax()>, grid, block, 0, true, f32p(y), f32p(state), f32p(r), f32p(w), f32p(k),
                 f32p(v), f32p(a), f32p(b), i32p(reset), T, static_cast<int>(H), static_cast<int>(N), C);
    });
  }

  void check_ids(const char* op, const Tensor& ids, int64_t V) {
    for (int32_t id : host_ints(ids))
      if (id < 0 || id >= V) fail("{}: token id {} outside the vocabulary of {}", op, id, V);
  }

  std::vector<int32_t> host_ints(const Tensor& t) {
    std::vector<int32_t> out(chk::empty(t) ? 0 : static_cast<size_t>(t.numel()));
    if (!out.empty()) rt::copy_to_host(out.data(), t.data, out.size() * sizeof(int32_t));
    return out;
  }

  float* scratch_floats(int64_t n) {
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    if (scratch_.size() < bytes) {
      scratch_ = Buffer();
      scratch_ = alloc(bytes);
    }
    return static_cast<float*>(scratch_.data());
  }
};
