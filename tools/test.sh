#!/usr/bin/env bash
# Sets up (when needed), builds and runs every test: Check unit tests and end-to-end tests, then
# the unit tests, the damaged-input test and the emulated-GPU tests once more under AddressSanitizer
# and UBSan (a separate build in build-asan/, without the CUDA backend, where a CPU emulation of
# CUDA in tests/cuda_emulation/ runs the kernels of cuda/), and the threads of a training run
# under ThreadSanitizer (build-tsan/).
# The example data is found at $DPTRAIN_DATA (default ../shared/data beside the checkout, or beside
# the checkout it was cloned from).
# With CI=true (.ci/run sets it) a test that would skip fails instead, naming what it lacks; only
# the GPU kernel test may skip there (no GPU on CI machines). The skipped tests are listed at the end.
# Test-only packages: Lmod (tests/e2e/e2e_modules.sh); tests/e2e/e2e_slurm.sh installs and starts Slurm and
# munge itself (tests/slurm/start-slurm.sh, as root); tests/e2e/e2e_multinode.sh makes a 3-node Slurm
# cluster in network namespaces (tests/cluster/start-cluster.sh, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# A clone of a local checkout (git clone . /tmp/x) finds the example data beside the original.
if [ -z "${DPTRAIN_DATA:-}" ] && [ ! -d ../shared/data ]; then
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  if [ -n "$origin" ] && [ -d "$origin/../shared/data" ]; then
    DPTRAIN_DATA=$(cd "$origin/../shared/data" && pwd)
    export DPTRAIN_DATA
  fi
fi
# Under CI the example data must be there: say so at once rather than after the first tests.
if [ "${CI:-}" = true ]; then
  data=${DPTRAIN_DATA:-$PWD/../shared/data}
  for f in cancer/cancer_data.csv cancer/cancer_target.csv mnist/train-images-idx3-ubyte.gz \
           keras/mnist_cnn_keras3.16.0_legacy.h5; do
    [ -f "$data/$f" ] || { echo "test.sh: CI=true but the example data is missing: $data/$f (set DPTRAIN_DATA)" >&2; exit 1; }
  done
fi
DPTRAIN_EXTRA_PACKAGES="lmod ${DPTRAIN_EXTRA_PACKAGES:-}" tools/setup.sh
ctest_log=$(mktemp /tmp/dptrain-ctest.XXXXXX)
skipped_summary() {
  local rc=$?
  local skipped
  skipped=$(grep -E '\*\*\*Skipped|Not Run' "$ctest_log" | sed 's/^ *[0-9]*\/[0-9]* *Test *#[0-9]*: //; s/ \.\.\.*/ /' || true)
  if [ -n "$skipped" ]; then
    echo "Skipped tests:"
    printf '  %s\n' "$skipped"
  else
    echo "Skipped tests: none"
  fi
  rm -f "$ctest_log"
  exit $rc
}
trap skipped_summary EXIT
run_ctest() { ctest "$@" 2>&1 | tee -a "$ctest_log"; }

run_ctest --test-dir build --output-on-failure "$@"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDPTRAIN_SANITIZE=ON -DDPTRAIN_CUDA=OFF >/dev/null
tools/build-dir.sh build-asan
ASAN_OPTIONS=detect_leaks=1 run_ctest --test-dir build-asan --output-on-failure -L unit
# damaged inputs, a full disk and the whole program on the emulated GPU, under the sanitizers (leaks not
# counted: error exits do not free)
ASAN_OPTIONS=detect_leaks=0 DPTRAIN_FUZZ_ITERATIONS=100 run_ctest --test-dir build-asan --output-on-failure -L "fuzz|emulated"
# the batch reader thread beside training, on the CPU and the emulated device
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPTRAIN_SANITIZE_THREADS=ON -DDPTRAIN_CUDA=OFF >/dev/null
tools/build-dir.sh build-tsan --target dptrain dptrain_emulated
run_ctest --test-dir build-tsan --output-on-failure --no-tests=error -L threads
