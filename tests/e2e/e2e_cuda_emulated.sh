#!/usr/bin/env bash
# The GPU path of the whole program, on the CPU emulation of CUDA (tests/cuda_emulation/): training
# with graph replay, the reader thread and its fences, checkpoints of device state, validation,
# staged MPI sums and the one-rank NCCL path, against the CPU backend of the same binary. It is not a GPU: it shows that the
# host side and the kernels' logic are right; tools/gpu-check.sh on a GPU machine shows the rest.
source "$(dirname "$0")/e2e_lib.sh"
need_data cancer/cancer_data.csv
have_h5py || skip_test "comparing weights needs python3-h5py"
compare() { /usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" "$@"; }

"$DPTRAIN" import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" -o cancer.h5 \
  --test-split 0.3 --seed 7 >/dev/null || { fail "import"; finish; }
job="$SRC/jobs/cancer_mlp.cfg"
# The emulation rounds GEMM inputs to tf32 or bf16 as tensor cores do, so runs compared with the
# CPU to rounding ask for fp32.
fp32=(--set 'fit.precision="fp32"')
# train DIR ARGS...: fit the cancer job into DIR in fp32 (log in DIR.log)
train() {
  local dir=$1
  shift
  "$DPTRAIN" fit "$job" --run-dir "$dir" --progress lines "${fp32[@]}" "$@" >"$dir.log" 2>&1 || fail "$dir: $(tail -2 "$dir.log")"
}

train cpu --device cpu
train gpu --device cuda
grep -q "^Backend: cuda" gpu.log && pass "the emulated device trains ($(grep -o 'GPU memory [0-9/]* MiB' gpu.log | tail -1))" ||
  fail "not on the cuda backend: $(grep Backend gpu.log)"
out=$(compare cpu/last.h5 gpu/last.h5 1e-5) && pass "emulated GPU vs CPU, whole run with early stopping: $out" ||
  fail "emulated GPU vs CPU: $out"

# Plain cuBLAS products (no cuBLASLt algorithm) inside recorded steps: they must use our workspace
# (the emulation fails a product that would allocate from cuBLAS' pool during a capture, as
# cublasSetStream after cublasSetWorkspace would make it).
DPTRAIN_EMULATE_NO_LT=1 train nolt --device cuda --set fit.batch_size=64 --set fit.epochs=4
DPTRAIN_EMULATE_NO_LT=1 DPTRAIN_CUDA_GRAPHS=0 train nolt-nograph --device cuda --set fit.batch_size=64 --set fit.epochs=4
out=$(compare nolt/last.h5 nolt-nograph/last.h5 0) && pass "plain cuBLAS products recorded in graphs (our workspace): $out" ||
  fail "plain products in graphs: $out $(grep -m1 'emulated cuBLAS' nolt.log)"

# A library probe that leaves a non-sticky error behind (cuBLASLt's heuristic, here on request) must
# not make the next kernel's launch check fail with someone else's error.
DPTRAIN_EMULATE_STALE_ERROR=1 train stale --device cuda
out=$(compare gpu/last.h5 stale/last.h5 0) && pass "a stale error left by a library probe is cleared, not blamed on a kernel: $out" ||
  fail "stale probe error: $out $(grep -m1 'error' stale.log)"

# A captured step with memory-allocation nodes (a library allocating during the capture) is said;
# the real steps have none.
DPTRAIN_EMULATE_GRAPH_ALLOC=1 train graphalloc --device cuda --set fit.batch_size=64 --set fit.epochs=2
grep -q "memory-allocation node(s)" graphalloc.log && ! grep -q "memory-allocation node" nolt.log &&
  pass "a graph with a memory-allocation node is reported: $(grep -m1 -o "the CUDA graph.*" graphalloc.log); the real ones (nolt.log) have none" ||
  fail "graph memory nodes: $(grep -m1 'graph' graphalloc.log) / $(grep -m1 'memory-allocation' nolt.log)"

# Graph replay and the reader thread change nothing (the emulation is deterministic).
DPTRAIN_CUDA_GRAPHS=0 train nograph --device cuda
out=$(compare gpu/last.h5 nograph/last.h5 0) && pass "graph replay vs launches: $out" || fail "graphs change the weights: $out"
train nothread --device cuda --set data.reader_thread=false
out=$(compare gpu/last.h5 nothread/last.h5 0) && pass "reader thread off: $out" || fail "reader thread changes the weights: $out"

# Stop after 6 epochs, resume to the end: the device's weights, moments and step scalars come back.
train part --device cuda --set fit.epochs=6
train part --device cuda --resume auto
out=$(compare gpu/last.h5 part/last.h5 0) && pass "stop after 6 epochs + resume on the device: $out" ||
  fail "resume on the device: $out"

# Dense relu layers under Dense layers (the cancer model without its dropouts): their relu and bias
# gradients come from the next layer's dx product (cuBLASLt RELU_AUX_BIAS forward, DRELU_BGRAD
# backward; 134 and 152 in the emulator's count), against the CPU and against the unfused passes
# (DPTRAIN_LT_DRELU=0).
sed '/type = "dropout"/d' "$job" >stacked.cfg
stacked() { "$DPTRAIN" fit stacked.cfg --run-dir "$1" --progress lines "${fp32[@]}" --set fit.epochs=12 "${@:2}" >"$1.log" 2>&1 || fail "$1: $(tail -2 "$1.log")"; }
stacked stacked_cpu --device cpu
DPTRAIN_EMULATE_STATS=1 stacked stacked_fused --device cuda
DPTRAIN_EMULATE_STATS=1 DPTRAIN_LT_DRELU=0 stacked stacked_plain --device cuda
counts() { grep -o 'epilogues queued:.*' "$1.log"; }
if counts stacked_fused | grep -q ' 152:[1-9]' && ! counts stacked_plain | grep -q ' 152:'; then
  out=$(compare stacked_cpu/last.h5 stacked_fused/last.h5 1e-5) && pass "fused relu gradients vs CPU: $out ($(counts stacked_fused))" ||
    fail "fused relu gradients vs CPU: $out"
  out=$(compare stacked_plain/last.h5 stacked_fused/last.h5 1e-5) && pass "fused relu gradients vs unfused: $out" ||
    fail "fused relu gradients vs unfused: $out"
else
  fail "the fused relu path did not run as asked: fused $(counts stacked_fused); DPTRAIN_LT_DRELU=0 $(counts stacked_plain)"
fi

# cuBLASLt's choice of algorithm (#21 item 2). The emulated heuristic answers only when asked with
# the product's bias and relu-mask pointers (the stacked run above counts fused epilogues, so it
# shows they are set before asking). Its first candidate failing cublasLtMatmulAlgoCheck and then
# refused by cublasLtMatmul: the next is taken, bit-identical to the plain emulated answer. Every
# algorithm refused at run time (NOT_SUPPORTED): the plain path, as with no cuBLASLt at all. The
# first question about each shape failing (a transient error): asked again, so later steps fuse.
DPTRAIN_EMULATE_STATS=1 DPTRAIN_EMULATE_LT_BAD_FIRST=1 stacked lt_bad_first --device cuda
out=$(compare stacked_fused/last.h5 lt_bad_first/last.h5 0) && counts lt_bad_first | grep -q ' 152:[1-9]' &&
  pass "a first algorithm that fails cublasLtMatmulAlgoCheck is passed over: $out ($(counts lt_bad_first))" ||
  fail "bad first algorithm: $out $(counts lt_bad_first) $(grep -m1 'cuBLASLt' lt_bad_first.log)"
all_epilogues=bias,relu_bias,relu_aux_bias,drelu_bgrad,bgrada
DPTRAIN_EMULATE_STATS=1 DPTRAIN_EMULATE_LT_RUN_REFUSE=$all_epilogues stacked lt_run_refused --device cuda
DPTRAIN_EMULATE_NO_LT=1 stacked lt_none --device cuda
out=$(compare lt_none/last.h5 lt_run_refused/last.h5 0) && ! counts lt_run_refused | grep -q ':[1-9]' &&
  pass "algorithms that cublasLtMatmul refuses (NOT_SUPPORTED) fall back to the plain path: $out" ||
  fail "refused at run time: $out $(counts lt_run_refused) $(grep -m1 'cuBLASLt' lt_run_refused.log)"
DPTRAIN_EMULATE_STATS=1 DPTRAIN_EMULATE_LT_TRANSIENT=1 DPTRAIN_CUDA_GRAPHS=0 stacked lt_transient --device cuda
out=$(compare stacked_cpu/last.h5 lt_transient/last.h5 1e-5) && counts lt_transient | grep -q ' 134:[1-9].* 152:[1-9]' &&
  pass "a transient heuristic failure is not remembered: asked again, fused from the next step ($(counts lt_transient)); vs CPU $out" ||
  fail "transient heuristic failure: $out $(counts lt_transient)"

# DPTRAIN_LT_OFF (bench-gpu.sh times each fusion against the plain path with it): the epilogues
# named are never asked for, the others still run.
DPTRAIN_EMULATE_STATS=1 DPTRAIN_LT_OFF=relu_aux_bias,bgrada stacked lt_off --device cuda
counts lt_off | grep -q ' 4:[1-9]' && ! counts lt_off | grep -qE ' (134|152|256):' &&
  out=$(compare stacked_cpu/last.h5 lt_off/last.h5 1e-5) &&
  pass "DPTRAIN_LT_OFF=relu_aux_bias,bgrada: those (and DRELU_BGRAD, which needs the mask) stay unfused, bias still fused ($(counts lt_off)); vs CPU $out" ||
  fail "DPTRAIN_LT_OFF: $(counts lt_off) $(compare stacked_cpu/last.h5 lt_off/last.h5 1e-5)"

# Partial epilogue support (#21 item 3): a GPU's cuBLASLt may offer some epilogues and refuse
# others for a shape. Every mix of the five refused or offered, 3 epochs each, against the CPU;
# a refused epilogue never runs.
stacked mix_cpu --device cpu --set fit.epochs=3
mixes=0 mix_fail=""
for bits in $(seq 0 31); do
  refuse=""
  i=0
  for e in ${all_epilogues//,/ }; do
    [ $(((bits >> i) & 1)) = 1 ] && refuse="$refuse${refuse:+,}$e"
    i=$((i + 1))
  done
  DPTRAIN_EMULATE_STATS=1 DPTRAIN_EMULATE_LT_REFUSE=$refuse stacked "mix_$bits" --device cuda --set fit.epochs=3
  ok=1
  compare mix_cpu/last.h5 "mix_$bits/last.h5" 1e-5 >/dev/null || ok=0
  for e in ${refuse//,/ }; do
    code=$(case $e in bias) echo 4 ;; relu_bias) echo 6 ;; relu_aux_bias) echo 134 ;; drelu_bgrad) echo 152 ;; bgrada) echo 256 ;; esac)
    counts "mix_$bits" | grep -q " $code:" && ok=0
  done
  [ $ok = 1 ] && mixes=$((mixes + 1)) || mix_fail="$mix_fail [refused: ${refuse:-none}: $(compare mix_cpu/last.h5 "mix_$bits/last.h5" 1e-5) $(counts "mix_$bits")]"
done
[ -z "$mix_fail" ] && pass "all $mixes mixes of offered and refused epilogues ($all_epilogues) train as the CPU does (1e-5)" ||
  fail "epilogue mixes:$mix_fail"

# tf32 (the GPU default) and bf16 against fp32 on the CPU: the loss of every epoch, as
# tools/gpu-check.sh asks of the GPU (within 2e-2 relative); 20 epochs, no early stop.
long=(--set fit.epochs=20 --set fit.early_stopping.patience=100)
train long_cpu --device cpu "${long[@]}"
for p in tf32 bf16; do
  train long_$p --device cuda "${long[@]}" --set "fit.precision=\"$p\""
  worst=$(paste -d' ' <(cut -d, -f2 long_cpu/history.csv) <(cut -d, -f2 long_$p/history.csv) |
    awk 'NR > 1 { d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.2e", m }')
  holds "$worst" 'v > 0 && v < 2e-2' && pass "$p loss per epoch vs fp32 CPU, 20 epochs: at most $worst" ||
    fail "$p loss per epoch vs fp32 CPU: $worst (0 would mean the rounding is not emulated)"
done

# The latest schedule a GPU may choose (DPTRAIN_EMULATE_DEFER, tests/cuda_emulation/streams.cpp):
# queued work runs only when something waits for it, here even from the reader thread's fence
# waits. A host that refills a pinned buffer before its copy ran, or reads a result before waiting
# for it, trains on other numbers; a stream order missing around the all-reduce stops the run.
many=(--set fit.batch_size=32 --set fit.epochs=3)
train steps --device cuda "${many[@]}"
DPTRAIN_EMULATE_DEFER=1 train deferred --device cuda "${many[@]}"
out=$(compare steps/last.h5 deferred/last.h5 0) && pass "deferred schedule (reader thread, graphs, 9 steps an epoch): $out" ||
  fail "deferred schedule: $out"
DPTRAIN_EMULATE_DEFER=1 train deferred_part --device cuda "${many[@]}" --set fit.epochs=2
DPTRAIN_EMULATE_DEFER=1 train deferred_part --device cuda "${many[@]}" --resume auto
out=$(compare steps/last.h5 deferred_part/last.h5 0) && pass "deferred schedule, stop after 2 epochs + resume: $out" ||
  fail "deferred schedule with resume: $out"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 DPTRAIN_EMULATE_DEFER=1 mpirun -x DPTRAIN_EMULATE_DEFER --oversubscribe --bind-to none -np 2 \
  "$DPTRAIN" fit "$job" --device cuda "${fp32[@]}" "${many[@]}" --set 'fit.allreduce="mpi"' --run-dir deferred_mpi2 \
  --progress lines >deferred_mpi2.log 2>&1 || fail "2 ranks, deferred: $(tail -2 deferred_mpi2.log)"
out=$(compare steps/last.h5 deferred_mpi2/last.h5 1e-5) && pass "deferred schedule, 2 ranks (staged MPI sums) vs 1: $out" ||
  fail "deferred schedule, 2 ranks: $out"
DPTRAIN_EMULATE_DEFER=1 train deferred_nccl --device cuda "${many[@]}" --set 'fit.allreduce="nccl"' --set fit.allreduce_bucket_mb=0.005
out=$(compare steps/last.h5 deferred_nccl/last.h5 0) && pass "deferred schedule, one-rank NCCL with buckets: $out" ||
  fail "deferred schedule with NCCL: $out"

# Two ranks sharing the device through the staged MPI sum, against one CPU rank.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --bind-to none -np 2 \
  "$DPTRAIN" fit "$job" --device cuda "${fp32[@]}" --set 'fit.allreduce="mpi"' --run-dir mpi2 --progress lines >mpi2.log 2>&1 ||
  fail "2 ranks: $(tail -2 mpi2.log)"
out=$(compare cpu/last.h5 mpi2/last.h5 1e-5) && pass "2 emulated-device ranks (staged MPI sums) vs 1 CPU rank: $out" ||
  fail "2 ranks vs CPU: $out"

# One rank through the real NCCL code path (a communicator of one, as on a single GPU), with one
# sum per step and with buckets started during backward: it runs through (init, launches, joins,
# waits, finalize) and changes nothing. (A sum over one rank cannot show a wrong bucket.)
train nccl1 --device cuda --set 'fit.allreduce="nccl"'
train nccl1b --device cuda --set 'fit.allreduce="nccl"' --set fit.allreduce_bucket_mb=0.005
grep -q '"allreduce_buckets_per_step": [2-9]' nccl1b/summary.json && pass "NCCL buckets: $(grep -o '"allreduce_buckets_per_step": [0-9]*' nccl1b/summary.json)" ||
  fail "no NCCL buckets: $(grep -o '"allreduce[^,]*' nccl1b/summary.json | tr '\n' ' ')"
for d in nccl1 nccl1b; do
  out=$(compare gpu/last.h5 $d/last.h5 0) && pass "one-rank NCCL ($d): $out" || fail "one-rank NCCL ($d): $out"
done

# More ranks than devices with NCCL: refused at start, on every rank, with the way out (ranks
# share a device only with fit.allreduce = "mpi"); the job ends, nothing hangs.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun --oversubscribe --bind-to none -np 2 \
  "$DPTRAIN" fit "$job" --device cuda --set 'fit.allreduce="nccl"' --run-dir nccl2 --progress lines >nccl2.log 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q '2 ranks on .* but 1 visible GPU.*fit.allreduce = "mpi"' nccl2.log; then
  pass "2 NCCL ranks on 1 device: refused at start (exit $rc)"
else
  fail "2 NCCL ranks on 1 device: exit $rc: $(grep -m1 error nccl2.log)"
fi

# A GPU this build has no code for (CMAKE_CUDA_ARCHITECTURES): one line with the fix, exit 2, at
# start rather than at the first kernel.
DPTRAIN_EMULATE_NO_KERNEL_IMAGE=1 "$DPTRAIN" fit "$job" --device cuda --run-dir noimage >noimage.log 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'no code for GPU 0 (CPU emulation, compute capability 9.0).*rebuild with -DCMAKE_CUDA_ARCHITECTURES=90' noimage.log; then
  pass "a GPU without code in this build: exit 2, $(grep -o 'rebuild with [^ ]*' noimage.log)"
else
  fail "a GPU without code in this build: exit $rc: $(tail -1 noimage.log)"
fi

# The CNN: conv2d, maxpool and flatten on the device, 8 steps.
if [ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]; then
  skip_part "$DATA/mnist not found: the CNN on the emulated device"
else
  "$DPTRAIN" import mnist "$DATA/mnist" -o mnist.h5 >/dev/null || fail "import mnist"
  short=(--set fit.epochs=1 --set fit.steps_per_epoch=8 --set fit.threads=1 --progress lines "${fp32[@]}")
  "$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" "${short[@]}" --device cpu --run-dir mcpu >mcpu.log 2>&1 || fail "mnist cpu"
  "$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" "${short[@]}" --device cuda --run-dir mgpu >mgpu.log 2>&1 ||
    fail "mnist on the device: $(tail -2 mgpu.log)"
  out=$(compare mcpu/last.h5 mgpu/last.h5 1e-4) && pass "CNN, 8 steps, emulated GPU vs CPU: $out" || fail "CNN: $out"
  DPTRAIN_EMULATE_DEFER=1 "$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" "${short[@]}" --device cuda --run-dir mdefer >mdefer.log 2>&1 ||
    fail "mnist, deferred schedule: $(tail -2 mdefer.log)"
  out=$(compare mgpu/last.h5 mdefer/last.h5 0) && pass "CNN, deferred schedule: $out" || fail "CNN, deferred schedule: $out"
  sed "s|\"mnist.h5\"|\"$PWD/mnist.h5\"|" "$SRC/jobs/mnist_cnn.cfg" >mnist.cfg
  "$DPTRAIN" bench mnist.cfg --device cuda --steps 2 --warmup-seconds 0 --profile --set fit.batch_size=4 \
    >mprofile.txt 2>mprofile.err || fail "bench --profile on the device: $(tail -2 mprofile.err)"
  check_profile mprofile.txt conv2d max_pooling2d conv2d_1 max_pooling2d_1 flatten dense dense_1
fi
finish
