#!/usr/bin/env bash
# Sets up and runs the test suite. Options:
#   --slow       also run the tests labelled "slow"
#   --sanitize   build with ASan/UBSan into build-asan/ and run the suite there
set -euo pipefail
cd "$(dirname "$0")/.."
slow=0
sanitize=0
for arg in "$@"; do
  case "$arg" in
    --slow) slow=1 ;;
    --sanitize) sanitize=1 ;;
    *) echo "test.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
scripts/fetch_models.sh
if ((sanitize)); then
  export ARWKV_BUILD_DIR=build-asan
  scripts/build.sh -DARWKV_SANITIZE=ON -DARWKV_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
else
  scripts/build.sh
fi
build_dir=${ARWKV_BUILD_DIR:-build}
exclude=()
((slow)) || exclude=(-LE slow)
# Several test programs run at once on few cores: OpenMP threads that spin while waiting would
# steal the cores from each other, so waiting threads sleep.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "${exclude[@]}"
