#!/usr/bin/env bash
# One command for the GPU machine (one H200, lent for minutes), everything GPU issues ask to show:
#   1. build with CMake (sm_90) and run the GPU kernel tests against the CPU backend
#      (fp32 1e-5, tf32 1e-2, bf16 3e-2);
#   2. a short training run on GPU and on CPU from the same data and initial weights: loss curves
#      side by side (the GPU in tf32);
#   3. 1 rank, 1 rank through NCCL (a communicator of one; also in buckets during backward) and
#      2 ranks sharing the GPU (fit.allreduce = "mpi") against the CPU: final weights; and the
#      classification losses (binary, sparse and categorical cross-entropy with accuracy or mae,
#      on 0/1 labels) trained on the GPU and on the CPU: final weights; which epilogues cuBLASLt
#      accepted (CUBLASLT_LOG_MASK=5, by epilogue) and no memory-allocation node in a captured step;
#   4. tools/bench-gpu.sh: dptrain against PyTorch on the same GPU (--quick; FULL=1 tries every
#      torch.compile variant, which may not fit one 10-minute device call);
#   5. tools/mnist-cpu-vs-gpu.sh: the MNIST tutorial's CPU and GPU times, one epoch each.
# Each run has a time limit (a hang costs minutes, not the whole device call); each failed check
# prints a PROBLEM line; the exit status is 1 when steps 1-3 had any.
# Output in $OUT (or ./gpu-check).     source .devdeps/use.sh use; tools/gpu-check.sh
# The 300 M-row seed job is a call of its own: tools/bench-gpu.sh --seed-job-only.
# EMULATED=DIR rehearses steps 1-3 without a GPU, with the emulated device of a CUDA-off build in
# DIR (tests/dptrain_emulated, tests/test_cuda_emulated), so the script itself is known to work
# before GPU time is spent on it (step 4 needs PyTorch with CUDA and is left out; GPU_CHECK_ROWS,
# default 20000, makes its training runs shorter).
set -uo pipefail
cd "$(dirname "$0")/.."
# Everything it prints goes to $OUT/gpu-check.txt; the logs of each step are bundled at the end
# into $OUT/logs.tgz (a device call brings back 8 files at most), with the speed table beside it.
dest=${OUT:-gpu-check}
out=$dest/logs
rm -rf "$out" && mkdir -p "$out"
exec > >(tee "$dest/gpu-check.txt") 2>&1
work=
bundle() {
  [ -n "$work" ] && rm -rf "$work"
  [ -f "$out/table.md" ] && cp "$out/table.md" "$dest/"
  tar czf "$dest/logs.tgz" -C "$dest" logs && rm -rf "$out"
}
trap bundle EXIT
trap 'echo "gpu-check: stopped by a signal"; exit 143' TERM INT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ -n "${EMULATED:-}" ]; then
  D=$(cd "$EMULATED" && pwd)/tests/dptrain_emulated
  kernels=$EMULATED/tests/test_cuda_emulated
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
else
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
  D=$PWD/build-gpu/dptrain
  kernels=build-gpu/tests/test_cuda_backend
fi
# A python with h5py and numpy compares weights (tests/e2e/compare_weights.py).
PY=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  "$p" -c "import h5py, numpy" 2>/dev/null && { PY=$p; break; }
done
problems=0
problem() { echo "PROBLEM: $*"; problems=$((problems + 1)); }
echo "== 1. kernels against the CPU backend"
timeout -k 10 300 "$kernels" | tee "$out/kernels.log"
[ "${PIPESTATUS[0]}" = 0 ] || problem "kernel tests failed ($out/kernels.log)"
# again with convolution and pooling split into launches of a few samples (as batches beyond 2^31 values are)
DPTRAIN_CUDA_LAUNCH_VALUES=600 timeout -k 10 300 "$kernels" >"$out/kernels-split.log" 2>&1 ||
  problem "kernel tests with split launches failed: $(grep FAIL "$out/kernels-split.log" | head -3 | tr '\n' ' ')"
work=$(mktemp -d)
(cd "$work" && "$D" synth --rows "${GPU_CHECK_ROWS:-20000}" --features 30 --targets 2 -o s.h5 >/dev/null)
sed -e "s|\"cancer.h5\"|\"$work/s.h5\"|" -e 's|"categorical_crossentropy"|"mse"|' -e 's|"accuracy"|"mae"|g' \
  -e 's|val_accuracy|val_mae|g' -e 's|"max"|"min"|g' jobs/cancer_mlp.cfg >"$work/gpu_vs_cpu.cfg"
# fit RUN_DIR RANKS [OPTIONS...]: one training run, its log in $out/RUN_DIR.log; a failure is a
# problem, shown with the end of its log.
fit() {
  local dir=$1 ranks=$2 launch=() job=${JOB:-$work/gpu_vs_cpu.cfg}
  shift 2
  [ "$ranks" = 1 ] || launch=(mpirun --oversubscribe -np "$ranks")
  timeout -k 10 240 "${launch[@]}" "$D" fit "$job" --run-dir "$work/$dir" --progress lines "$@" >"$out/$dir.log" 2>&1 ||
    problem "$dir: exit $?: $(tail -2 "$out/$dir.log" | tr '\n' ' ')"
}
echo "== 2. loss per epoch, CPU (fp32) and GPU (tf32), same data and initial weights"
for dev in cpu cuda; do
  fit $dev 1 --device $dev --set fit.epochs=20
done
paste -d' ' <(cut -d, -f2 "$work/cpu/history.csv") <(cut -d, -f2 "$work/cuda/history.csv") |
  awk 'NR == 1 { print "epoch cpu_loss gpu_loss rel_diff"; next }
       { d = ($1 - $2) / $1; if (d < 0) d = -d; printf "%5d %s %s %.2e\n", NR - 1, $1, $2, d; if (d > m) m = d }
       END { ok = NR > 1 && m < 2e-2
             printf "max relative difference %.2e (%s)\n", m, ok ? "within tf32 tolerance" : "FAIL" }' |
  tee "$out/loss-cpu-vs-gpu.txt"
grep -q "within tf32 tolerance" "$out/loss-cpu-vs-gpu.txt" || problem "GPU loss curve does not track the CPU's"
echo "== 3. final weights: CPU, 1 GPU rank, 2 ranks on the one GPU (fit.allreduce = \"mpi\")"
small=(--set fit.epochs=3 --set fit.early_stopping.patience=100 --set fit.precision='"fp32"')
fit w-cpu 1 --device cpu "${small[@]}"
fit w-gpu1 1 --device cuda "${small[@]}"
fit w-nccl1 1 --device cuda "${small[@]}" --set 'fit.allreduce="nccl"'
grep -m1 "all-reduce" "$out/w-nccl1.log"
fit w-nccl1b 1 --device cuda "${small[@]}" --set 'fit.allreduce="nccl"' --set fit.allreduce_bucket_mb=0.004
fit w-gpu2 2 --device cuda "${small[@]}" --set 'fit.allreduce="mpi"'
timeout -k 10 120 mpirun --oversubscribe -np 2 "$D" fit "$work/gpu_vs_cpu.cfg" --device cuda "${small[@]}" --run-dir "$work/w-gpu2-nccl" \
  >"$out/w-gpu2-nccl.log" 2>&1
refusal=$(grep -m1 "dptrain: error" "$out/w-gpu2-nccl.log")  # not mpirun's "errorcode" line, which may come first
echo "(2 ranks on one GPU with NCCL must be refused:) $refusal"
case $refusal in *'fit.allreduce = "mpi"'*) ;; *) problem "2 ranks on one GPU with NCCL were not refused" ;; esac
# Which fused epilogues cuBLASLt accepted, per shape (its API log), in seed_mlp's shapes; and no
# captured step may hold memory-allocation nodes (dptrain warns of any).
narrow=()
[ -n "${EMULATED:-}" ] && narrow=(--set model.[1].units=64 --set model.[3].units=64 --set model.[4].units=64 --set model.[5].units=64)
CUBLASLT_LOG_MASK=5 CUBLASLT_LOG_FILE=$out/cublaslt-api.log timeout -k 10 120 "$D" fit jobs/seed_mlp.cfg --device cuda \
  --set data.synthetic.rows=8192 "${narrow[@]}" --run-dir "$work/lt-log" --progress lines >"$out/lt-log.log" 2>&1 ||
  problem "seed_mlp with the cuBLASLt log: exit $?: $(tail -2 "$out/lt-log.log" | tr '\n' ' ')"
echo "cuBLASLt matmuls by epilogue (seed_mlp, 8 steps):"
grep -o 'epilogue=[A-Z_]*' "$out/cublaslt-api.log" 2>/dev/null | sort | uniq -c | tee "$out/cublaslt-epilogues.txt"
grep -h "cuBLASLt\|not supported\|NOT_SUPPORTED" "$out/cublaslt-api.log" 2>/dev/null | grep -i "error\|not supported" | head -5
mem=$(grep -l "memory-allocation node" "$out"/*.log 2>/dev/null | tr '\n' ' ')
[ -z "$mem" ] && echo "captured steps: no memory-allocation nodes" || problem "memory-allocation nodes in captured steps: $mem"
# The same GPU run twice: our kernels use no floating-point atomics, so this shows whether the
# libraries' orders are reproducible too (bit for bit; reported, not required).
fit w-gpu1-again 1 --device cuda "${small[@]}"
# Classification: 0/1 labels (is the sum of 8 uniform features above 4?), the output layer and
# loss of each kind, with accuracy or mae, 3 epochs in fp32 on both devices.
(cd "$work" && awk 'BEGIN { srand(3); for (i = 0; i < 2000; i++) { s = 0; l = ""
     for (j = 0; j < 8; j++) { v = rand(); s += v; l = l (j ? "," : "") sprintf("%.5f", v) }
     print l > "cx.csv"; print (s > 4 ? 1 : 0) > "cy.csv" } }' &&
  "$D" import csv --x cx.csv --y cy.csv -o c.h5 >/dev/null) || problem "cannot make the classification data"
classes=("binary_crossentropy 1 sigmoid accuracy" "sparse_categorical_crossentropy 2 softmax accuracy"
         "categorical_crossentropy 2 softmax mae")
for c in "${classes[@]}"; do
  read -r loss units act metric <<<"$c"
  printf 'data = { file = "%s/c.h5"; validation_split = 0.2; normalize = "standard"; };
model = ( { type = "dense"; units = 16; activation = "relu"; }, { type = "dense"; units = %s; activation = "%s"; } );
fit = { epochs = 3; batch_size = 64; loss = "%s"; metrics = ["%s"]; precision = "fp32"; optimizer = "adam"; };\n' \
    "$work" "$units" "$act" "$loss" "$metric" >"$work/$loss.cfg"
  for dev in cpu cuda; do
    JOB=$work/$loss.cfg fit "c-$loss-$dev" 1 --device $dev
  done
done
# The layers, activations, optimizer and schedule that came after the first kernels: the 30
# features reshaped to 5x6 images, conv2d without bias (l2 penalty), BatchNormalization
# (synchronized), gelu and leaky_relu, average and global pooling, AdamW under a cosine schedule
# with warm-up; on the CPU, on the GPU (in a CUDA graph), and as 2 ranks on the GPU (the BatchNorm
# sums staged through MPI). 8 steps an epoch: the emulated rehearsal runs its block-synchronizing
# kernels on real threads, slowly. No bias ahead of a BatchNormalization: its exact gradient is
# zero (the mean is subtracted), so Adam would turn each device's round-off into steps of the rate.
cat >"$work/layers.cfg" <<CFG
data = { file = "$work/s.h5"; validation_split = 0.2; };
model = ( { type = "reshape"; target_shape = [5, 6, 1]; },
          { type = "conv2d"; filters = 8; kernel_size = 3; padding = "same"; use_bias = false;
            kernel_regularizer = { name = "l2"; l2 = 1e-3; }; },
          { type = "batch_normalization"; }, { type = "activation"; activation = "gelu"; },
          { type = "average_pooling2d"; pool_size = 2; padding = "same"; },
          { type = "conv2d"; filters = 8; kernel_size = 2; kernel_initializer = "he_normal"; use_bias = false; },
          { type = "batch_normalization"; momentum = 0.9; }, { type = "leaky_relu"; },
          { type = "global_average_pooling2d"; }, { type = "dense"; units = 2; } );
fit = { epochs = 3; batch_size = 64; steps_per_epoch = 8; loss = "mse"; metrics = ["mae"]; precision = "fp32";
        optimizer = { name = "adamw"; learning_rate = { name = "cosine_decay"; initial_learning_rate = 0.0;
                      warmup_target = 0.01; warmup_steps = 50; decay_steps = 500; }; }; };
CFG
for dev in cpu cuda; do
  JOB=$work/layers.cfg fit "l-$dev" 1 --device $dev
done
JOB=$work/layers.cfg fit l-cuda2 2 --device cuda --set 'fit.allreduce="mpi"'
if [ -z "$PY" ]; then
  problem "no python3 with h5py and numpy: final weights not compared"
else
  r=$("$PY" tests/e2e/compare_weights.py "$work/w-gpu1/last.h5" "$work/w-gpu1-again/last.h5" 0 2>&1) &&
    echo "the same GPU run twice: identical weights (bit for bit)" | tee "$out/repeat.txt" ||
    echo "the same GPU run twice: weights differ: $r" | tee "$out/repeat.txt"
  { for run in w-gpu1 w-nccl1 w-nccl1b w-gpu2; do
      r=$("$PY" tests/e2e/compare_weights.py "$work/w-cpu/last.h5" "$work/$run/last.h5" 1e-3 2>&1 | tail -1) &&
        echo "$run: equal to CPU, $r" || problem "$run: final weights differ from the CPU's: $r"
    done
    for run in l-cuda l-cuda2; do
      r=$("$PY" tests/e2e/compare_weights.py "$work/l-cpu/last.h5" "$work/$run/last.h5" 1e-3 2>&1 | tail -1) &&
        echo "$run (BatchNormalization, pooling, activations, AdamW, cosine): equal to CPU, $r" ||
        problem "$run (BatchNormalization, pooling, activations, AdamW, cosine): weights differ from the CPU's: $r"
    done
    for c in "${classes[@]}"; do
      loss=${c%% *}
      r=$("$PY" tests/e2e/compare_weights.py "$work/c-$loss-cpu/last.h5" "$work/c-$loss-cuda/last.h5" 1e-3 2>&1 | tail -1) &&
        echo "$loss ($c): GPU equal to CPU, $r" || problem "$loss ($c): GPU weights differ from the CPU's: $r"
      grep -h "^Epoch 3/3" -A1 "$out/c-$loss-cpu.log" "$out/c-$loss-cuda.log" | grep -o "val_[a-z]*: [0-9.]*" | tr '\n' ' '
      echo
    done; } | tee "$out/weights.txt"
  problems=$((problems + $(grep -c PROBLEM "$out/weights.txt")))
fi
echo "gpu-check: $problems problem(s) in steps 1-3"
[ -n "${EMULATED:-}" ] && exit $((problems > 0))
echo "== 4. speed against PyTorch"
if [ "${FULL:-0}" = 1 ]; then OUT=$out tools/bench-gpu.sh; else OUT=$out tools/bench-gpu.sh --quick; fi
echo "== 5. the MNIST tutorial's comparison: 1 epoch on the CPU and on the GPU"
DPTRAIN=$D tools/mnist-cpu-vs-gpu.sh 1 2>&1 | tee "$out/mnist-cpu-vs-gpu.txt" | tail -5
echo "gpu-check: $problems problem(s) in steps 1-3 (above)"
exit $((problems > 0))
