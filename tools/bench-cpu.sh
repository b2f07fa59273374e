#!/usr/bin/env bash
# dptrain against the PyTorch reference on this CPU, side by side: same models, batch sizes and
# thread counts, random data in memory, Adam (what torch_reference.py speed trains with). Each
# workload runs interleaved, dptrain then PyTorch, ROUNDS times (A B A B A B), and the table gives
# the medians, so a machine that slows down during the run slows both alike. For the convolution
# workload dptrain also runs with DPTRAIN_CONV=im2col (its fallback without oneDNN).
#   tools/bench-cpu.sh [THREADS...]         default: 1 and all cores; ROUNDS=3
# Needs build/dptrain (tools/setup.sh) and Debian's python3-torch (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${TORCH_REFERENCE:-$ROOT/../shared/bench/torch_reference.py}
DATA=${DPTRAIN_DATA:-$ROOT/../shared/data}
ROUNDS=${ROUNDS:-3}
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

field() { sed -n "s/.*\"$1\": \"*\([^,\"}]*\)\"*[,}].*/\1/p"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rows=()
run() { # workload job batch steps threads [im2col]
  local w=$1 job=$2 b=$3 steps=$4 t=$5 also_im2col=${6:-} i d p ds=() ps=() is=()
  for ((i = 0; i < ROUNDS; i++)); do
    d=$(build/dptrain bench "$job" --set fit.batch_size="$b" --set fit.threads="$t" --steps "$steps" --warmup-seconds 2)
    ds+=("$(echo "$d" | field samples_per_s)")
    p=$(OMP_NUM_THREADS=$t /usr/bin/python3 "$REF" speed "$w" --device cpu --batch "$b" --steps "$steps" --warmup-seconds 2)
    ps+=("$(echo "$p" | field samples_per_s)")
    if [ -n "$also_im2col" ]; then
      d=$(DPTRAIN_CONV=im2col build/dptrain bench "$job" --set fit.batch_size="$b" --set fit.threads="$t" --steps "$steps" \
            --warmup-seconds 2)
      is+=("$(echo "$d" | field samples_per_s)")
    fi
  done
  local dm pm im=-
  dm=$(printf '%s\n' "${ds[@]}" | median)
  pm=$(printf '%s\n' "${ps[@]}" | median)
  [ ${#is[@]} -eq 0 ] || im=$(printf '%.0f' "$(printf '%s\n' "${is[@]}" | median)")
  echo "$w batch $b, $t threads: dptrain ${ds[*]}; pytorch ${ps[*]}${is:+; im2col ${is[*]}}" >&2
  rows+=("$(printf '| %-10s | %5s | %7s | %17.0f | %9s | %17.0f | %5.2fx |' "$w" "$b" "$t" "$dm" "$im" "$pm" \
            "$(awk -v a="$dm" -v b="$pm" 'BEGIN{print a/b}')")")
}
for t in "${threads[@]}"; do
  run cancer_mlp "$work/cancer_adam.cfg" 318 2000 "$t"
  run cancer_mlp "$work/cancer_adam.cfg" 1024 1000 "$t"
  run seed_mlp jobs/seed_mlp.cfg 1024 8 "$t"
  [ -z "$mnist_job" ] || run mnist_cnn "$mnist_job" 32 200 "$t" im2col
  [ -z "$mnist_job" ] || run mnist_cnn "$mnist_job" 256 40 "$t" im2col
  [ -z "$mnist_job" ] || run mnist_cnn "$mnist_job" 1024 12 "$t" im2col
done
echo
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_tile|amx_bf16)$' | tr '\n' ' ')
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; flags: ${flags:-none of avx2/avx512/amx}; $(date -u +%Y-%m-%d)"
echo "dptrain: $(build/dptrain bench "$work/cancer_adam.cfg" --steps 1 --warmup-seconds 0 | field libraries)"
if [ -n "$mnist_job" ]; then
  impls=$(ONEDNN_VERBOSE=1 build/dptrain bench "$mnist_job" --steps 1 --warmup-seconds 0 2>&1 |
          awk -F, '/^onednn_verbose,exec,cpu,convolution/ {print $5 " " $6}' | sort -u | tr '\n' ';')
  echo "oneDNN kernels for mnist_cnn: ${impls:-none (not used)}"
fi
echo "PyTorch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__, "oneDNN", torch.backends.mkldnn.is_available())')"
echo "medians of $ROUNDS interleaved runs (samples/s)"
echo "| workload   | batch | threads | dptrain samples/s | im2col    | pytorch samples/s | ratio |"
echo "|------------|-------|---------|-------------------|-----------|-------------------|-------|"
printf '%s\n' "${rows[@]}"
