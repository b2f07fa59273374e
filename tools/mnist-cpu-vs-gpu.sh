#!/usr/bin/env bash
# The MNIST tutorial's comparison: train jobs/mnist_cnn.cfg once on the CPU and once on the GPU
# from the same seed, then print both times, the speed-up and both test accuracies.
#   tools/mnist-cpu-vs-gpu.sh [EPOCHS]          (default 1; the tutorial's job has 5)
# Needs a CUDA build (build-gpu/, or DPTRAIN=path) and the MNIST IDX files in $DPTRAIN_DATA/mnist
# (default ../shared/data/mnist, else .devdeps/data/mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
D=${DPTRAIN:-build-gpu/dptrain}
[ -x "$D" ] || D=build/dptrain
data=
for dir in "${DPTRAIN_DATA:-../shared/data}/mnist" .devdeps/data/mnist; do # .devdeps: on the GPU machine
  [ -d "$dir" ] && { data=$dir; break; }
done
[ -n "$data" ] || { echo "mnist-cpu-vs-gpu: no MNIST files in ${DPTRAIN_DATA:-../shared/data}/mnist (set DPTRAIN_DATA)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$D" import mnist "$data" -o "$work/mnist.h5" >/dev/null
sed -e "s|\"mnist.h5\"|\"$work/mnist.h5\"|" jobs/mnist_cnn.cfg >"$work/mnist.cfg"
declare -A secs acc
for dev in cpu cuda; do
  start=$(date +%s.%N)
  "$D" fit "$work/mnist.cfg" --device $dev --set fit.epochs="$epochs" --run-dir "$work/$dev" --progress lines \
    >"$work/$dev.log" 2>&1 || { echo "mnist-cpu-vs-gpu: the $dev run failed:" >&2; tail -3 "$work/$dev.log" >&2; exit 1; }
  secs[$dev]=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  acc[$dev]=$("$D" evaluate "$work/mnist.cfg" --weights "$work/$dev/last.h5" --json | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p')
  grep "^Epoch" "$work/$dev.log" | sed "s/^/$dev: /"
done
echo
echo "| device | epochs | wall seconds | test accuracy |"
echo "|--------|-------:|-------------:|--------------:|"
for dev in cpu cuda; do printf '| %-6s | %6s | %12s | %13s |\n' "$dev" "$epochs" "${secs[$dev]}" "${acc[$dev]}"; done
echo "GPU speed-up: $(awk -v c="${secs[cpu]}" -v g="${secs[cuda]}" 'BEGIN{printf "%.1fx", c/g}')"
