#!/usr/bin/env bash
# dptrain against the PyTorch reference on the same GPU, side by side in one run: samples/s of
# full training steps (forward, loss, backward, Adam) on random data already in device memory.
# PyTorch runs in each of its configurations (default and fused Adam; torch.compile default and
# reduce-overhead, i.e. CUDA graphs) and the table compares against the fastest.
#   tools/bench-gpu.sh [--quick] [--full-seed | --seed-job-only]
#     --quick          fewer PyTorch variants: torch.compile only where it was measured fastest on the H200
#                      (mnist_cnn at batch 32, reduce-overhead); fits one 10-minute device call
#     --full-seed      also train the full seed tutorial job (300 M synthetic rows, 1 epoch), timed
#     --seed-job-only  only that job (a device call of its own: its goal is under 6 minutes)
# Needs a CUDA build (build-gpu/, made here when missing) and torch with CUDA for python3.
# Logs, the table and each workload's profile (dptrain bench --profile) go to $OUT (default ./bench-gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
out=${OUT:-bench-gpu}
mkdir -p "$out"
REF=${TORCH_REFERENCE:-}
for r in "$REF" .devdeps/torch_reference.py ../shared/bench/torch_reference.py; do
  [ -n "$r" ] && [ -f "$r" ] && { REF=$r; break; }
done
PY=${PYTHON:-python3}
quick=0 full=0 table=1
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --full-seed) full=1 ;;
    --seed-job-only) full=1 table=0 ;;
    *) echo "bench-gpu: unknown option $a" >&2; exit 2 ;;
  esac
done
if [ ! -x build-gpu/dptrain ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
D=$ROOT/build-gpu/dptrain
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# cancer_mlp's shape (30 features, 2 classes) with Adam, as torch_reference.py trains it.
(cd "$work" && "$D" synth --rows 569 --features 30 --targets 2 -o c.h5 >/dev/null)
sed -e 's|optimizer = {.*};|optimizer = { name = "adam"; };|' -e "s|\"cancer.h5\"|\"$work/c.h5\"|" \
  -e 's|"categorical_crossentropy"|"mse"|' -e 's|"accuracy"|"mae"|g' -e 's|val_accuracy|val_mae|g' \
  -e 's|"max"|"min"|g' jobs/cancer_mlp.cfg >"$work/cancer.cfg"
# mnist_cnn needs the image shape, so the MNIST files (imported once; dptrain bench trains on
# random values of that shape, as the PyTorch reference does).
mnist=
for dir in "${DPTRAIN_DATA:-}/mnist" ../shared/data/mnist .devdeps/data/mnist; do
  [ -d "$dir" ] && "$D" import mnist "$dir" -o "$work/mnist.h5" >/dev/null 2>&1 && { mnist=$work/mnist.h5; break; }
done
sed -e "s|\"mnist.h5\"|\"$work/mnist.h5\"|" jobs/mnist_cnn.cfg >"$work/mnist.cfg"

field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" | head -1; }
rows=()
bench() { # workload job batch precision steps
  local w=$1 job=$2 b=$3 prec=$4 steps=$5 d ds best=0 bestcfg=none p ps cfg
  d=$(timeout -k 10 120 "$D" bench "$job" --device cuda --set fit.batch_size="$b" --set "fit.precision=\"$prec\"" --steps "$steps" \
      --warmup-seconds 3 2>>"$out/errors.log")
  echo "dptrain $w b$b $prec: $d" | tee -a "$out/bench.log"
  ds=$(echo "$d" | field samples_per_s)
  local variants=("--adam default" "--adam fused")
  if [ $quick = 0 ]; then
    variants+=("--adam fused --compile default" "--adam fused --compile reduce-overhead")
  elif [ "$w" = mnist_cnn ] && [ "$b" = 32 ]; then
    variants+=("--adam fused --compile reduce-overhead")
  fi
  for cfg in "${variants[@]}"; do
    # shellcheck disable=SC2086
    p=$(timeout -k 10 300 "$PY" "$REF" speed "$w" --device cuda --precision "$prec" --batch "$b" --steps "$steps" --warmup-seconds 3 $cfg \
        2>>"$out/errors.log" | tail -1)
    echo "pytorch $w b$b $prec $cfg: $p" | tee -a "$out/bench.log"
    ps=$(echo "$p" | field samples_per_s)
    [ -n "$ps" ] && awk -v a="$ps" -v b="$best" 'BEGIN{exit !(a > b)}' && { best=$ps; bestcfg=$cfg; }
  done
  rows+=("$(printf '| %-10s | %5s | %-4s | %12.0f | %12.0f | %-38s | %6.2fx |' "$w" "$b" "$prec" "${ds:-0}" "$best" \
    "$bestcfg" "$(awk -v a="${ds:-0}" -v b="$best" 'BEGIN{print (b > 0 ? a / b : 0)}')")")
}
# The table: every workload, dptrain and PyTorch one after the other.
speed_table() {
  for prec in fp32 tf32 bf16; do bench seed_mlp jobs/seed_mlp.cfg 1024 "$prec" 100; done
  bench cancer_mlp "$work/cancer.cfg" 318 tf32 2000
  if [ -n "$mnist" ]; then
    bench mnist_cnn "$work/mnist.cfg" 32 tf32 1000
    bench mnist_cnn "$work/mnist.cfg" 1024 tf32 200
  else
    echo "bench-gpu: no MNIST files (DPTRAIN_DATA/mnist, ../shared/data/mnist); mnist_cnn left out" | tee -a "$out/bench.log"
  fi
  # What CUDA graphs are worth on the launch-bound workloads: the same steps with them turned off.
  for w in "cancer_mlp $work/cancer.cfg 318 2000" ${mnist:+"mnist_cnn $work/mnist.cfg 32 1000"}; do
    set -- $w
    d=$(DPTRAIN_CUDA_GRAPHS=0 timeout -k 10 120 "$D" bench "$2" --device cuda --set fit.batch_size="$3" --steps "$4" --warmup-seconds 3 \
        2>>"$out/errors.log")
    echo "dptrain $1 b$3 tf32 without CUDA graphs: $d" | tee -a "$out/bench.log"
    rows+=("$(printf '| %-10s | %5s | %-4s | %12.0f | %12s | %-38s | %6s |' "$1" "$3" "tf32" \
      "$(echo "$d" | field samples_per_s)" "" "(dptrain without CUDA graphs)" "")")
  done
  # What the fused relu gradients (cuBLASLt RELU_AUX_BIAS / DRELU_BGRAD) are worth on seed_mlp.
  d=$(DPTRAIN_LT_DRELU=0 timeout -k 10 120 "$D" bench jobs/seed_mlp.cfg --device cuda --set fit.batch_size=1024 --set 'fit.precision="tf32"' \
      --steps 100 --warmup-seconds 3 2>>"$out/errors.log")
  echo "dptrain seed_mlp b1024 tf32 without fused relu gradients: $d" | tee -a "$out/bench.log"
  rows+=("$(printf '| %-10s | %5s | %-4s | %12.0f | %12s | %-38s | %6s |' seed_mlp 1024 tf32 \
    "$(echo "$d" | field samples_per_s)" "" "(dptrain, relu gradients unfused)" "")")
  # Fused or plain, per epilogue: seed_mlp with each cuBLASLt epilogue left to the plain path
  # (DPTRAIN_LT_OFF), beside the fused row above; the faster is what dptrain should keep.
  for e in relu_bias relu_aux_bias drelu_bgrad bgrada bias; do
    d=$(DPTRAIN_LT_OFF=$e timeout -k 10 120 "$D" bench jobs/seed_mlp.cfg --device cuda --set fit.batch_size=1024 \
        --set 'fit.precision="tf32"' --steps 100 --warmup-seconds 3 2>>"$out/errors.log")
    echo "dptrain seed_mlp b1024 tf32 with the $e epilogue unfused: $d" | tee -a "$out/bench.log"
    rows+=("$(printf '| %-10s | %5s | %-4s | %12.0f | %12s | %-38s | %6s |' seed_mlp 1024 tf32 \
      "$(echo "$d" | field samples_per_s)" "" "(dptrain, $e unfused)" "")")
  done
  # Where each workload's step goes (bench --profile: every layer and part timed alone), in profile.txt.
  for w in "seed_mlp jobs/seed_mlp.cfg 1024" "cancer_mlp $work/cancer.cfg 318" \
    ${mnist:+"mnist_cnn $work/mnist.cfg 32" "mnist_cnn $work/mnist.cfg 1024"}; do
    set -- $w
    { echo "== $1, batch $3, tf32"; timeout -k 10 120 "$D" bench "$2" --device cuda --set fit.batch_size="$3" --steps 50 \
        --warmup-seconds 1 --profile 2>&1; } >>"$out/profile.txt"
  done
  {
    echo
    echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1); $(date -u +%Y-%m-%d)"
    echo "| workload   | batch | prec | dptrain samples/s | best pytorch samples/s | pytorch config | ratio |"
    echo "|------------|-------|------|--------------|--------------|----------------------------------------|--------|"
    printf '%s\n' "${rows[@]}"
  } | tee "$out/table.md"
}
[ $table = 0 ] || speed_table
if [ $full = 1 ]; then
  start=$(date +%s.%N)
  "$D" fit jobs/seed_mlp.cfg --device cuda --set data.synthetic.rows=300000000 --run-dir "$work/full" --progress lines \
    >"$out/full-seed.log" 2>&1
  rc=$?
  echo "full seed tutorial job (300 M rows, 1 epoch, batch 1024, tf32): exit $rc, wall $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.0f", e-s}') s" |
    tee -a "$out/table.md"
  tail -3 "$out/full-seed.log"
fi
