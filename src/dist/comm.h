// The ranks of a data-parallel run. A program started by an MPI launcher (mpirun, mpiexec, srun
// with PMI/PMIx) is one rank of MPI_COMM_WORLD; a program started alone is the only rank and never
// touches MPI. The collectives are MPI's, on host memory: a tensor on another device travels
// through a host copy. Every rank must call the collectives in the same order.
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
  int rank_ = 0, size_ = 1;
  uint64_t bytes_ = 0;
};

// This process's ranks. The first call initialises MPI when the program was started by a launcher
// (and finalises it at exit); it is safe to call from anywhere, any number of times.
Comm& world();

// Whether the program was built with MPI, and whether it was started by an MPI launcher.
bool mpi_built();
bool launched_by_mpi();

// "rank 1 of 4: " on a distributed run, "" otherwise: the prefix of messages that name their rank.
std::string rank_prefix();

}  // namespace arwkv
