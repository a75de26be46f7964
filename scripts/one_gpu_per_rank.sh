#!/usr/bin/env bash
# Runs a command on the GPU of this MPI rank's place on its node: each rank of a data-parallel run
# sees one device (the CUDA backend uses the first it sees). Open MPI and Slurm say which local
# rank a process is; outside a launcher it is 0.
#   mpirun -np 8 scripts/one_gpu_per_rank.sh build/arwkv distill CONFIG.toml --backend cuda
set -euo pipefail
local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-${MPI_LOCALRANKID:-0}}}
export CUDA_VISIBLE_DEVICES=$local_rank
exec "$@"
