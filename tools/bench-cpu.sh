#!/usr/bin/env bash
# dptrain against the PyTorch reference on this CPU, side by side, same thread counts, same models,
# same batch sizes, random data in memory, Adam (what torch_reference.py speed trains with).
#   tools/bench-cpu.sh [THREADS...]         default: 1 and all cores
# Needs build/dptrain (tools/setup.sh) and Debian's python3-torch (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${TORCH_REFERENCE:-$ROOT/../shared/bench/torch_reference.py}
DATA=${DPTRAIN_DATA:-$ROOT/../shared/data}
[ -x build/dptrain ] || tools/setup.sh
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "bench-cpu: needs python3-torch" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 "$(nproc)")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/dptrain import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" \
  -o "$work/cancer.h5" --test-split 0.3 --seed 7 >/dev/null
sed -e 's|optimizer = {.*};|optimizer = { name = "adam"; };|' -e "s|\"cancer.h5\"|\"$work/cancer.h5\"|" \
  jobs/cancer_mlp.cfg >"$work/cancer_adam.cfg"

mnist_job=
if [ -d "$DATA/mnist" ]; then
  build/dptrain import mnist "$DATA/mnist" -o "$work/mnist.h5" >/dev/null
  sed -e "s|\"mnist.h5\"|\"$work/mnist.h5\"|" jobs/mnist_cnn.cfg >"$work/mnist.cfg"
  mnist_job=$work/mnist.cfg
fi

field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
rows=()
run() { # workload job batch steps threads
  local w=$1 job=$2 b=$3 steps=$4 t=$5 d p
  d=$(build/dptrain bench "$job" --set fit.batch_size="$b" --set fit.threads="$t" --steps "$steps" --warmup-seconds 2)
  p=$(OMP_NUM_THREADS=$t /usr/bin/python3 "$REF" speed "$w" --device cpu --batch "$b" --steps "$steps" --warmup-seconds 2)
  echo "dptrain: $d"
  echo "pytorch: $p"
  local ds ps
  ds=$(echo "$d" | field samples_per_s)
  ps=$(echo "$p" | field samples_per_s)
  rows+=("$(printf '| %-10s | %5s | %7s | %12.0f | %12.0f | %5.2fx |' "$w" "$b" "$t" "$ds" "$ps" "$(awk -v a="$ds" -v b="$ps" 'BEGIN{print a/b}')")")
}
for t in "${threads[@]}"; do
  run cancer_mlp "$work/cancer_adam.cfg" 318 2000 "$t"
  run cancer_mlp "$work/cancer_adam.cfg" 1024 1000 "$t"
  run seed_mlp jobs/seed_mlp.cfg 1024 8 "$t"
  [ -z "$mnist_job" ] || run mnist_cnn "$mnist_job" 32 200 "$t"
  [ -z "$mnist_job" ] || run mnist_cnn "$mnist_job" 1024 12 "$t"
done
echo
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "| workload   | batch | threads | dptrain samples/s | pytorch samples/s | ratio |"
echo "|------------|-------|---------|--------------|--------------|-------|"
printf '%s\n' "${rows[@]}"
