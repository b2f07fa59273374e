#!/usr/bin/env bash
# One command for the GPU machine (see ../shared/docs/GPU.md), everything GPU issues ask to show:
#   1. build with CMake (sm_90) and run the GPU kernel tests against the CPU backend
#      (fp32 1e-5, tf32 1e-2, bf16 3e-2);
#   2. a short training run on GPU and on CPU from the same data and initial weights: loss curves
#      side by side (the GPU in tf32);
#   3. 1 rank, 1 rank through NCCL (a communicator of one; also in buckets during backward) and
#      2 ranks sharing the GPU (fit.allreduce = "mpi") against the CPU: final weights;
#   4. tools/bench-gpu.sh: dptrain against PyTorch on the same GPU (--quick unless FULL=1).
# Logs go to $OUT (or ./gpu-check).     source .devdeps/use.sh use; tools/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "== 1. kernels against the CPU backend"
build-gpu/tests/test_cuda_backend | tee "$out/kernels.log"
D=$PWD/build-gpu/dptrain
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$D" synth --rows 20000 --features 30 --targets 2 -o s.h5 >/dev/null)
sed -e "s|\"cancer.h5\"|\"$work/s.h5\"|" -e 's|"categorical_crossentropy"|"mse"|' -e 's|"accuracy"|"mae"|g' \
  -e 's|val_accuracy|val_mae|g' -e 's|"max"|"min"|g' jobs/cancer_mlp.cfg >"$work/gpu_vs_cpu.cfg"
echo "== 2. loss per epoch, CPU (fp32) and GPU (tf32), same data and initial weights"
for dev in cpu cuda; do
  "$D" fit "$work/gpu_vs_cpu.cfg" --device $dev --set fit.epochs=20 --run-dir "$work/$dev" --progress lines \
    >"$out/fit-$dev.log" 2>&1 || tail -3 "$out/fit-$dev.log"
done
paste -d' ' <(cut -d, -f2 "$work/cpu/history.csv") <(cut -d, -f2 "$work/cuda/history.csv") |
  awk 'NR == 1 { print "epoch cpu_loss gpu_loss rel_diff"; next }
       { d = ($1 - $2) / $1; if (d < 0) d = -d; printf "%5d %s %s %.2e\n", NR - 1, $1, $2, d; if (d > m) m = d }
       END { printf "max relative difference %.2e (%s)\n", m, m < 2e-2 ? "within tf32 tolerance" : "FAIL" }' |
  tee "$out/loss-cpu-vs-gpu.txt"
echo "== 3. final weights: CPU, 1 GPU rank, 2 ranks on the one GPU (fit.allreduce = \"mpi\")"
small=(--set fit.epochs=3 --set fit.early_stopping.patience=100 --set fit.precision='"fp32"')
"$D" fit "$work/gpu_vs_cpu.cfg" --device cpu "${small[@]}" --run-dir "$work/w-cpu" >"$out/w-cpu.log" 2>&1
"$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --run-dir "$work/w-gpu1" >"$out/w-gpu1.log" 2>&1
"$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --set 'fit.allreduce="nccl"' --run-dir "$work/w-nccl1" \
  >"$out/w-nccl1.log" 2>&1
grep -m1 "all-reduce\|error" "$out/w-nccl1.log"
"$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --set 'fit.allreduce="nccl"' \
  --set fit.allreduce_bucket_mb=0.004 --run-dir "$work/w-nccl1b" >"$out/w-nccl1b.log" 2>&1
mpirun --oversubscribe -np 2 "$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --set 'fit.allreduce="mpi"' \
  --run-dir "$work/w-gpu2" >"$out/w-gpu2.log" 2>&1
mpirun --oversubscribe -np 2 "$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" \
  --run-dir "$work/w-gpu2-nccl" >"$out/w-gpu2-nccl.log" 2>&1
echo "(2 ranks on one GPU with NCCL must be refused:) $(grep -m1 error "$out/w-gpu2-nccl.log")"
# The same GPU run twice: our kernels use no floating-point atomics, so this shows whether the
# libraries' orders are reproducible too (bit for bit).
"$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --run-dir "$work/w-gpu1-again" >"$out/w-gpu1-again.log" 2>&1
if command -v h5diff >/dev/null; then
  h5diff "$work/w-gpu1/last.h5" "$work/w-gpu1-again/last.h5" /dense /dense >/dev/null 2>&1 &&
    echo "the same GPU run twice: identical weights (bit for bit)" || echo "the same GPU run twice: weights DIFFER"
fi | tee "$out/repeat.txt"
for run in w-gpu1 w-nccl1 w-nccl1b w-gpu2; do
  for l in dense dense_1 dense_2; do
    if command -v h5diff >/dev/null; then
      h5diff -p 1e-3 "$work/w-cpu/last.h5" "$work/$run/last.h5" "/$l" "/$l" >/dev/null 2>&1 &&
        echo "$run $l: equal to CPU within 1e-3 relative" || echo "$run $l: DIFFERS from CPU (h5diff -p 1e-3)"
    fi
  done
done | tee "$out/weights.txt"
echo "== 4. speed against PyTorch"
if [ "${FULL:-0}" = 1 ]; then OUT=$out tools/bench-gpu.sh --full-seed; else OUT=$out tools/bench-gpu.sh --quick; fi
