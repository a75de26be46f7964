// Collectives between GPUs through NCCL (built with the CUDA backend, MPI and the CUDA toolkit's
// NCCL). One communicator spans the ranks of MPI_COMM_WORLD: rank 0 makes its id and sends it to
// the others with MPI_Bcast, the first time any rank asks for a device collective (every rank asks
// in the same order, as for every collective). Buffers are f32 device pointers of the CUDA backend;
// the collectives run on the backend's stream (the default stream), in order with its kernels.
#pragma once

#include <cstdint>

namespace arwkv::nccl {

// x[0, n) ← Σ over ranks, in place.
void allreduce_sum(float* x, int64_t n, int rank, int size);
// On root: x ← Σ over ranks; the others' x is left as it was.
void reduce_sum(float* x, int64_t n, int root, int rank, int size);
// x ← root's x on every rank.
void broadcast(float* x, int64_t n, int root, int rank, int size);

// The NCCL version this build links, as "2.27.7".
const char* version();

}  // namespace arwkv::nccl
