#!/usr/bin/env bash
# Sets up (when needed), builds and runs every test: Check unit tests and end-to-end tests, then
# the unit tests, the damaged-input test and the emulated-GPU tests once more under AddressSanitizer
# and UBSan (a separate build in build-asan/, without the CUDA backend, where a CPU emulation of
# CUDA in tests/cuda_emulation/ runs the kernels of cuda/), and the threads of a training run
# under ThreadSanitizer (build-tsan/).
# The example data is found at $DPTRAIN_DATA (default ../shared/data beside the checkout).
# Test-only packages: Lmod (tests/e2e_modules.sh); tests/e2e_slurm.sh installs and starts Slurm and
# munge itself (tests/slurm/start-slurm.sh, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
DPTRAIN_EXTRA_PACKAGES="lmod ${DPTRAIN_EXTRA_PACKAGES:-}" tools/setup.sh
ctest --test-dir build --output-on-failure "$@"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDPTRAIN_SANITIZE=ON -DDPTRAIN_CUDA=OFF >/dev/null
cmake --build build-asan -j "$(nproc)" 2>&1 | grep -E "warning:|error:" >&2 || true
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -L unit
# damaged inputs, a full disk and the whole program on the emulated GPU, under the sanitizers (leaks not
# counted: error exits do not free)
ASAN_OPTIONS=detect_leaks=0 DPTRAIN_FUZZ_ITERATIONS=100 ctest --test-dir build-asan --output-on-failure -L "fuzz|emulated"
# the batch reader thread beside training, on the CPU and the emulated device
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPTRAIN_SANITIZE_THREADS=ON -DDPTRAIN_CUDA=OFF >/dev/null
cmake --build build-tsan -j "$(nproc)" --target dptrain dptrain_emulated 2>&1 | grep -E "warning:|error:" >&2 || true
ctest --test-dir build-tsan --output-on-failure --no-tests=error -L threads
