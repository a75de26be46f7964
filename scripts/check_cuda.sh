#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in two halves (the GPU machine has CUDA 13 and Python
# with PyTorch but not this project's Debian libraries, and cannot download anything):
#
#   scripts/check_cuda.sh pack          here: build with CUDA, gather the programs, the non-system
#                                       shared libraries they need and the test fixtures into
#                                       gpu-pack.tar.xz (and the fla-core wheel, if pip can fetch it)
#   scripts/check_cuda.sh run [OUT]     there, from the repository root with gpu-pack.tar.xz:
#                                       1. every CUDA op against the CPU backend, teacher and student
#                                          logits, a training step's loss and gradients, the smoke
#                                          distillation (the tests' "cuda" instances, fp32 GEMMs),
#                                          NCCL's collectives on one rank and the smoke distillation
#                                          with comm = "nccl" against the plain CUDA run;
#                                       2. bench_cuda: WKV-7 forward+backward at B=8 T=4096 C=4096,
#                                          decode at batch 1 and 64, GEMMs;
#                                       3. fla's chunk_rwkv7 at the same shape (bench/wkv7_fla.py);
#                                       4. kd steps of a Qwen2.5-0.5B-shaped random pair at T=2048:
#                                          PyTorch (transformers teacher, fla student, bf16:
#                                          bench/torch_train.py) and bench_train with bf16
#                                          tensor-core GEMMs (tokens/s and MFU).
#                                       Logs go to OUT (default gpu-check/), each step's exit status
#                                       to OUT/status.
#   scripts/check_cuda.sh pack-distill  here: the default teacher in two slices (gpu-teacher.part.aa,
#                                       .ab) and the tokenized corpus (gpu-corpus.tar.xz), to carry
#                                       beside gpu-pack.tar.xz over two calls (64 MiB a call)
#   scripts/check_cuda.sh run-distill [OUT]
#                                       there: reassemble and check the teacher, then
#                                       scripts/distill.sh configs/smollm2-gpu.toml on the GPU with
#                                       bf16 GEMMs (resumes from its checkpoints when run again); the
#                                       report goes to OUT (default gpu-distill/)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  pack)
    set -e
    export ARWKV_BUILD_DIR=${ARWKV_BUILD_DIR:-build}
    scripts/build.sh -DARWKV_CUDA=ON
    b=$ARWKV_BUILD_DIR
    rm -rf gpu-pack && mkdir -p gpu-pack/bin gpu-pack/lib
    progs=("$b/arwkv" "$b/bench/bench_cuda" "$b/bench/bench_train")
    for t in test_cuda_backend test_nccl ops_backend_test test_backward_backends test_loss test_adamw test_wkv7 \
             test_wkv7_backward test_distill; do progs+=("$b/tests/$t"); done
    for p in "${progs[@]}"; do cp "$p" gpu-pack/bin/ && strip gpu-pack/bin/"$(basename "$p")"; done
    # Libraries outside the C runtime and CUDA (which the GPU machine has): Debian's OpenBLAS, fmt, ...
    for p in gpu-pack/bin/*; do ldd "$p"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
      grep -Ev '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt)\.so' |
      while read -r lib; do cp -L "$lib" gpu-pack/lib/; done
    cp -r tests/data gpu-pack/testdata
    cp -r configs gpu-pack/configs
    tar -cJf gpu-pack.tar.xz gpu-pack
    rm -rf gpu-pack
    mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: -d .whl fla-core einops || echo "check_cuda: no fla-core wheel (step 3 will be skipped)"
    du -sh gpu-pack.tar.xz .whl
    echo "carry: gpu-pack.tar.xz .whl  (both are ignored by git)"
    ;;
  run)
    out=${2:-gpu-check}
    mkdir -p "$out"
    : > "$out/status"
    step() {  # step NAME COMMAND...: runs it, logs it, records its exit status
      local name=$1; shift
      echo "== $name: $*" | tee -a "$out/log"
      "$@" > "$out/$name.log" 2>&1
      local rc=$?
      tail -n 40 "$out/$name.log"
      echo "$name $rc" >> "$out/status"
    }
    tar -xJf gpu-pack.tar.xz
    export LD_LIBRARY_PATH="$PWD/gpu-pack/lib:${LD_LIBRARY_PATH:-}"
    export ARWKV_TEST_DATA="$PWD/gpu-pack/testdata" ARWKV_BIN="$PWD/gpu-pack/bin/arwkv" OMP_WAIT_POLICY=passive
    # NCCL (218 MB, not carried) from PyTorch's nvidia-nccl wheel where the machine has one.
    nccl_lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
    [[ -n $nccl_lib ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$nccl_lib"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
    bin=gpu-pack/bin
    step tests_cuda_backend "$bin/test_cuda_backend"
    step tests_nccl "$bin/test_nccl"
    for t in ops_backend_test test_backward_backends test_loss test_adamw test_wkv7 test_wkv7_backward; do
      step "tests_$t" "$bin/$t" --gtest_filter='*/cuda'
    done
    step tests_distill bash -c "cd gpu-pack && $PWD/$bin/test_distill --gtest_filter='*Cuda*'"
    step bench_cuda "$bin/bench_cuda" --reps 5
    if [[ -d .whl ]] && ls .whl/fla_core-*.whl > /dev/null 2>&1; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
        step wkv7_fla env PYTHONPATH=/tmp/site python3 bench/wkv7_fla.py --reps 10
    fi
    if [[ -d .whl ]] && ls .whl/fla_core-*.whl > /dev/null 2>&1; then
      step torch_kd_fla env PYTHONPATH=/tmp/site python3 bench/torch_train.py --device cuda --shape qwen2.5-0.5b \
        --wkv fla --dtype bf16 --kd-only --batch 4 --seq-len 2048 --reps 3
    fi
    step bench_train_bf16 env ARWKV_CUDA_MATMUL=bf16 "$bin/bench_train" --backend cuda --random-teacher qwen2.5-0.5b \
      --batch 4 --seq-len 2048 --reps 3 --peak-tflops 989
    cat "$out/status"
    ;;
  pack-distill)
    set -e
    scripts/fetch_models.sh
    [[ -d build-corpus/data ]] || scripts/make_corpus.sh
    rm -f gpu-teacher.part.*
    split -n 2 models/SmolLM2-135M-Instruct.Q4_1.gguf gpu-teacher.part.
    tar -cf - -C build-corpus data heldout.txt | xz -T0 -6 > gpu-corpus.tar.xz
    du -sh gpu-teacher.part.* gpu-corpus.tar.xz
    echo "carry: first call gpu-pack.tar.xz .whl gpu-teacher.part.aa; second call gpu-teacher.part.ab gpu-corpus.tar.xz"
    ;;
  run-distill)
    set -e
    out=${2:-gpu-distill}
    model=models/SmolLM2-135M-Instruct.Q4_1.gguf
    mkdir -p models build-corpus "$out"
    if [[ ! -f $model ]]; then
      cat gpu-teacher.part.* > "$model.tmp"
      sha=$(awk -F'"' '/^model_sha256=/ {print $2}' scripts/fetch_models.sh)
      echo "$sha  $model.tmp" | sha256sum -c --quiet -
      mv "$model.tmp" "$model"
    fi
    [[ -d build-corpus/data ]] || tar -xJf gpu-corpus.tar.xz -C build-corpus
    [[ -d gpu-pack ]] || tar -xJf gpu-pack.tar.xz
    export LD_LIBRARY_PATH="$PWD/gpu-pack/lib:${LD_LIBRARY_PATH:-}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
    ARWKV=gpu-pack/bin/arwkv BACKEND=cuda ARWKV_CUDA_MATMUL=bf16 scripts/distill.sh configs/smollm2-gpu.toml 2>&1 |
      tee "$out/distill.log"
    cp runs/smollm2-gpu/report.md runs/smollm2-gpu/metrics.jsonl runs/smollm2-gpu/curves.png "$out/" 2>/dev/null || true
    ;;
  *)
    echo "usage: scripts/check_cuda.sh pack | run [OUT] | pack-distill | run-distill [OUT]" >&2
    exit 2
    ;;
esac
