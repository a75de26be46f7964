// Collectives between GPUs through NCCL (nccl.h), its communicator set up over MPI. The library is
// loaded when a run first asks for it (libnccl.so.2 from the library path, else the one found when
// the build was configured): the program starts on machines without NCCL, and says so only to a
// run that needs it.
#include "dist/nccl.h"

#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdlib>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "dist/comm.h"

namespace arwkv::nccl {
namespace {

constexpr cudaStream_t kStream = nullptr;  // the CUDA backend's: everything on the default stream

// The functions of NCCL this file calls, from the loaded library.
struct Api {
  decltype(&ncclGetVersion) get_version;
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclGetErrorString) error_string;
  decltype(&ncclGetLastError) last_error;
  decltype(&ncclAllReduce) all_reduce;
  decltype(&ncclReduce) reduce;
  decltype(&ncclBroadcast) broadcast;
};

const Api& api() {
  static const Api a = [] {
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen(ARWKV_NCCL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      fail("{}NCCL: cannot load libnccl.so.2 ({}): put the directory that has it on LD_LIBRARY_PATH", rank_prefix(),
           dlerror());
    Api r{};
    const auto bind = [lib](auto& f, const char* name) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(lib, name));
      if (!f) fail("{}NCCL: the loaded libnccl has no {}", rank_prefix(), name);
    };
    bind(r.get_version, "ncclGetVersion");
    bind(r.get_unique_id, "ncclGetUniqueId");
    bind(r.comm_init_rank, "ncclCommInitRank");
    bind(r.comm_destroy, "ncclCommDestroy");
    bind(r.error_string, "ncclGetErrorString");
    bind(r.last_error, "ncclGetLastError");
    bind(r.all_reduce, "ncclAllReduce");
    bind(r.reduce, "ncclReduce");
    bind(r.broadcast, "ncclBroadcast");
    return r;
  }();
  return a;
}

struct Communicator {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 0;
};

Communicator& communicator() {
  static Communicator c;
  return c;
}

void check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  const ncclComm_t comm = communicator().comm;
  const char* detail = comm ? api().last_error(comm) : nullptr;
  fail("{}NCCL: {} failed: {}{}{}", rank_prefix(), what, api().error_string(r), detail && *detail ? ": " : "",
       detail ? detail : "");
}

void destroy_at_exit() {
  Communicator& c = communicator();
  if (c.comm) api().comm_destroy(c.comm);
  c.comm = nullptr;
}

// The communicator of this process's ranks, made on the first call (a collective call: every rank
// makes it together).
ncclComm_t comm(int rank, int size) {
  Communicator& c = communicator();
  if (c.comm) {
    if (c.rank != rank || c.size != size)
      fail("NCCL: the communicator was made for rank {} of {}, asked for rank {} of {}", c.rank, c.size, rank, size);
    return c.comm;
  }
  ncclUniqueId id{};
  if (rank == 0) check(api().get_unique_id(&id), "ncclGetUniqueId");
  if (size > 1) {
    const int rc = MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) fail("{}MPI_Bcast of the NCCL id failed (MPI error {})", rank_prefix(), rc);
  }
  check(api().comm_init_rank(&c.comm, size, id, rank), "ncclCommInitRank");
  c.rank = rank;
  c.size = size;
  std::atexit(destroy_at_exit);  // before MPI_Finalize: registered after it
  return c.comm;
}

}  // namespace

void allreduce_sum(float* x, int64_t n, int rank, int size) {
  if (n == 0) return;
  check(api().all_reduce(x, x, static_cast<size_t>(n), ncclFloat32, ncclSum, comm(rank, size), kStream), "ncclAllReduce");
}

void reduce_sum(float* x, int64_t n, int root, int rank, int size) {
  if (n == 0) return;
  check(api().reduce(x, x, static_cast<size_t>(n), ncclFloat32, ncclSum, root, comm(rank, size), kStream), "ncclReduce");
}

void broadcast(float* x, int64_t n, int root, int rank, int size) {
  if (n == 0) return;
  check(api().broadcast(x, x, static_cast<size_t>(n), ncclFloat32, root, comm(rank, size), kStream), "ncclBroadcast");
}

const char* version() {
  static const std::string v = [] {
    int code = 0;
    if (api().get_version(&code) != ncclSuccess) return std::string("unknown");
    // NCCL_VERSION(X, Y, Z): X·1000 + Y·100 + Z up to 2.8, X·10000 + Y·100 + Z after
    return code < 20900 ? fmt::format("{}.{}.{}", code / 1000, code % 1000 / 100, code % 100)
                        : fmt::format("{}.{}.{}", code / 10000, code % 10000 / 100, code % 100);
  }();
  return v.c_str();
}

}  // namespace arwkv::nccl
