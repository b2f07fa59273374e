#!/usr/bin/env bash
# One command for the GPU machine (see ../shared/docs/GPU.md): build with CMake, run the GPU kernel
# tests against the CPU backend, train cancer_mlp on GPU and CPU from the same seed and compare,
# then time dptrain and the PyTorch reference side by side. Logs go to $OUT (or ./gpu-check).
#   source .devdeps/use.sh use; tools/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 &&
  cmake --build build-gpu -j 16 >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
build-gpu/tests/test_cuda_backend | tee "$out/kernels.log"
D=$PWD/build-gpu/dptrain
REF=${TORCH_REFERENCE:-.devdeps/torch_reference.py}
work=$(mktemp -d)
(cd "$work" && "$D" synth --rows 20000 --features 30 --targets 2 -o s.h5 >/dev/null)
sed -e "s|\"cancer.h5\"|\"$work/s.h5\"|" -e 's|"categorical_crossentropy"|"mse"|' -e 's|"accuracy"|"mae"|g' \
  -e 's|val_accuracy|val_mae|g' -e 's|"max"|"min"|g' jobs/cancer_mlp.cfg >"$work/gpu_vs_cpu.cfg"
for dev in cpu cuda; do
  "$D" fit "$work/gpu_vs_cpu.cfg" --device $dev --set fit.epochs=20 --run-dir "$work/$dev" >"$out/fit-$dev.log" 2>&1
done
paste -d' ' <(cut -d, -f2 "$work/cpu/history.csv") <(cut -d, -f2 "$work/cuda/history.csv") | head -21 | tee "$out/loss-cpu-vs-gpu.txt"
{
  "$D" bench jobs/seed_mlp.cfg --device cuda --steps 50 --warmup-seconds 3
  [ -f "$REF" ] && python3 "$REF" speed seed_mlp --device cuda --precision tf32 --adam fused --batch 1024 --warmup-seconds 3
  [ -f "$REF" ] && python3 "$REF" speed seed_mlp --device cuda --precision fp32 --adam fused --batch 1024 --warmup-seconds 3
} 2>&1 | tee "$out/bench.log"
rm -rf "$work"
