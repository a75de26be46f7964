// The ranks of a data-parallel run. A program started by an MPI launcher (mpirun, mpiexec, srun
// with PMI/PMIx) is one rank of MPI_COMM_WORLD; a program started alone is the only rank and never
// touches MPI. The collectives on tensors go through MPI on host memory (a tensor on a GPU travels
// through a host copy) or, for tensors of the cuda backend in a build with NCCL, through NCCL on the
// GPU (set_transport). Every rank must call the collectives in the same order.
#pragma once

#include <cstdint>
#include <string>

#include "backend/ops.h"
#include "core/tensor.h"

namespace arwkv {

class Comm {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // Whether the tensor collectives do anything: on several ranks, or on one when NCCL was asked
  // for by name (so one GPU runs the NCCL path).
  bool reduces() const { return size_ > 1 || forced_nccl_; }

  // How tensors of `ops` travel: "auto" (NCCL for the cuda backend's tensors where built, MPI
  // otherwise), "mpi" or "nccl" (an error naming `source`, the config, where this build or backend
  // has none). Returns the name of the transport chosen, "mpi" or "nccl".
  const char* set_transport(const std::string& mode, const Ops& ops, const std::string& source);

  // x ← Σ over ranks of x, in place, on every rank.
  void allreduce_sum(double* x, int64_t n);
  void allreduce_sum(Ops& ops, Tensor t);  // an F32 tensor on ops' device
  // On root: t ← Σ over ranks of t; the others' t is left as it was.
  void reduce_sum(Ops& ops, Tensor t, int root);
  // t ← root's t on every rank.
  void broadcast(Ops& ops, Tensor t, int root);
  void barrier();
  // Logical-or of a flag over the ranks (a rank that failed tells the others).
  bool any(bool flag);

  // Bytes this rank has sent in collectives since the last call (each allreduce of n bytes counts
  // 2·(size − 1)/size · n, a ring's share; a reduce (size − 1)/size · n; a broadcast n at its root).
  uint64_t take_bytes_sent();

  // Ends the whole run from a rank that cannot go on (the others are stopped by the launcher).
  [[noreturn]] void abort(int status);

 private:
  friend Comm& world();
  Comm() = default;
  bool on_nccl(const Tensor& t) const;  // whether t goes through NCCL

  int rank_ = 0, size_ = 1;
  uint64_t bytes_ = 0;
  bool nccl_ = false;         // the cuda backend's tensors go through NCCL
  bool forced_nccl_ = false;  // ... and on one rank too
};

// This process's ranks. The first call initialises MPI when the program was started by a launcher
// (and finalises it at exit); it is safe to call from anywhere, any number of times.
Comm& world();

// Whether the program was built with MPI (with NCCL), and whether it was started by an MPI launcher.
bool mpi_built();
bool nccl_built();
// The version of the NCCL library a build with NCCL loads (loading it: an error where it cannot be
// loaded), as "2.28.9"; "" in a build without NCCL.
std::string nccl_version();
bool launched_by_mpi();

// "rank 1 of 4: " on a distributed run, "" otherwise: the prefix of messages that name their rank.
std::string rank_prefix();

}  // namespace arwkv
