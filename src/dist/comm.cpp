// The ranks of a data-parallel run (comm.h): MPI_COMM_WORLD when launched by an MPI launcher.
#include "dist/comm.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/error.h"

#ifdef ARWKV_HAVE_MPI
#include <mpi.h>
#endif
#ifdef ARWKV_HAVE_NCCL
#include "dist/nccl.h"
#endif

namespace arwkv {
namespace {

#ifdef ARWKV_HAVE_MPI
// MPI's counts are int: big tensors go in pieces, f(offset, count) for each.
template <typename F>
void in_pieces(int64_t n, F&& f) {
  constexpr int64_t kMaxPiece = int64_t{1} << 28;
  for (int64_t i = 0; i < n; i += kMaxPiece) f(i, static_cast<int>(std::min(kMaxPiece, n - i)));
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::fprintf(stderr, "arwkv: error: %s%s failed: %.*s\n", rank_prefix().c_str(), what, len, msg);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void finalize_at_exit() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}
#endif

// A host copy of a tensor that is not on the CPU (the tensor itself when it is).
struct HostView {
  HostView(Ops& ops, Tensor t) : ops_(ops), t_(t) {
    ARWKV_ASSERT(t.dtype == DType::F32, "collectives take f32 tensors, not {}", dtype_name(t.dtype));
    if (t.device == Device::CPU) {
      p_ = static_cast<float*>(t.data);
    } else {
      copy_.resize(static_cast<size_t>(t.numel()));
      ops.download(copy_.data(), t);
      p_ = copy_.data();
    }
  }
  void write_back() {
    if (t_.device != Device::CPU) ops_.upload(t_, copy_.data());
  }
  float* data() { return p_; }

 private:
  Ops& ops_;
  Tensor t_;
  float* p_ = nullptr;
  std::vector<float> copy_;
};

}  // namespace

bool mpi_built() {
#ifdef ARWKV_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_built() {
#ifdef ARWKV_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::string nccl_version() {
#ifdef ARWKV_HAVE_NCCL
  return nccl::version();
#else
  return "";
#endif
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

Comm& world() {
  static Comm comm;
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef ARWKV_HAVE_MPI
    if (!launched_by_mpi()) return;
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok) check(MPI_Init(nullptr, nullptr), "MPI_Init");
    std::atexit(finalize_at_exit);
    MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &comm.size_);
#else
    if (launched_by_mpi() && std::getenv("ARWKV_QUIET_MPI") == nullptr)
      std::fprintf(stderr, "arwkv: started by an MPI launcher, but this build has no MPI: every process runs alone\n");
#endif
  });
  return comm;
}

std::string rank_prefix() {
  const Comm& c = world();
  return c.distributed() ? fmt::format("rank {} of {}: ", c.rank(), c.size()) : std::string();
}

const char* Comm::set_transport(const std::string& mode, const Ops& ops, const std::string& source) {
  const bool gpu = std::string_view(ops.name()) == "cuda";  // a real GPU (not the CUDA emulation)
  ARWKV_ASSERT(mode == "auto" || mode == "mpi" || mode == "nccl", "transport '{}'", mode);
  if (mode == "nccl" && !nccl_built())
    fail("{}: [run] comm = \"nccl\": this build has no NCCL (it needs the CUDA backend, MPI and the CUDA "
         "toolkit's NCCL when configured)",
         source);
  if (mode == "nccl" && !gpu)
    fail("{}: [run] comm = \"nccl\": NCCL moves tensors between GPUs, and this run's backend is {}", source,
         ops.name());
  nccl_ = gpu && nccl_built() && mode != "mpi";
  forced_nccl_ = mode == "nccl";
  return nccl_ ? "nccl" : "mpi";
}

bool Comm::on_nccl(const Tensor& t) const {
  if (!nccl_ || t.device != Device::CUDA) return false;
  ARWKV_ASSERT(t.dtype == DType::F32, "collectives take f32 tensors, not {}", dtype_name(t.dtype));
  return true;
}

void Comm::allreduce_sum(double* x, int64_t n) {
  if (size_ == 1) return;
#ifdef ARWKV_HAVE_MPI
  in_pieces(n, [&](int64_t i, int k) {
    check(MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
  bytes_ += static_cast<uint64_t>(2 * (size_ - 1) * n * 8 / size_);
#else
  (void)x;
  (void)n;
#endif
}

void Comm::allreduce_sum(Ops& ops, Tensor t) {
  if (!reduces()) return;
  const int64_t n = t.numel();
  bytes_ += static_cast<uint64_t>(2 * (size_ - 1) * n * 4 / size_);
#ifdef ARWKV_HAVE_NCCL
  if (on_nccl(t)) return nccl::allreduce_sum(static_cast<float*>(t.data), n, rank_, size_);
#endif
  if (size_ == 1) return;
#ifdef ARWKV_HAVE_MPI
  HostView h(ops, t);
  in_pieces(n, [&](int64_t i, int k) {
    check(MPI_Allreduce(MPI_IN_PLACE, h.data() + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
  h.write_back();
#else
  (void)ops;
  (void)t;
#endif
}

void Comm::reduce_sum(Ops& ops, Tensor t, int root) {
  if (!reduces()) return;
  const int64_t n = t.numel();
  bytes_ += static_cast<uint64_t>((size_ - 1) * n * 4 / size_);
#ifdef ARWKV_HAVE_NCCL
  if (on_nccl(t)) return nccl::reduce_sum(static_cast<float*>(t.data), n, root, rank_, size_);
#endif
  if (size_ == 1) return;
#ifdef ARWKV_HAVE_MPI
  HostView h(ops, t);
  in_pieces(n, [&](int64_t i, int k) {
    float* p = h.data() + i;
    check(MPI_Reduce(rank_ == root ? MPI_IN_PLACE : p, rank_ == root ? p : nullptr, k, MPI_FLOAT, MPI_SUM, root,
                     MPI_COMM_WORLD),
          "MPI_Reduce");
  });
  if (rank_ == root) h.write_back();
#else
  (void)ops;
  (void)t;
  (void)root;
#endif
}

void Comm::broadcast(Ops& ops, Tensor t, int root) {
  if (!reduces()) return;
  const int64_t n = t.numel();
  if (rank_ == root && size_ > 1) bytes_ += static_cast<uint64_t>(n * 4);
#ifdef ARWKV_HAVE_NCCL
  if (on_nccl(t)) return nccl::broadcast(static_cast<float*>(t.data), n, root, rank_, size_);
#endif
  if (size_ == 1) return;
#ifdef ARWKV_HAVE_MPI
  HostView h(ops, t);
  in_pieces(n, [&](int64_t i, int k) { check(MPI_Bcast(h.data() + i, k, MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Bcast"); });
  if (rank_ != root) h.write_back();
#else
  (void)ops;
  (void)t;
  (void)root;
#endif
}

void Comm::barrier() {
#ifdef ARWKV_HAVE_MPI
  if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

bool Comm::any(bool flag) {
  double x = flag ? 1.0 : 0.0;
  allreduce_sum(&x, 1);
  return x > 0.0;
}

uint64_t Comm::take_bytes_sent() {
  const uint64_t b = bytes_;
  bytes_ = 0;
  return b;
}

void Comm::abort(int status) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef ARWKV_HAVE_MPI
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  std::exit(status);
}

}  // namespace arwkv
