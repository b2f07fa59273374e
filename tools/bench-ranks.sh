#!/usr/bin/env bash
# Data-parallel scaling on this machine: an MNIST-sized job (60,000 rows of 784 features, Dense 128
# relu > Dense 10) trained for one epoch with 1 and 2 MPI ranks (one thread each), plus 1 rank with
# 2 threads for reference. Prints samples/s, speed-up, efficiency and the per-rank time split from
# summary.json.   tools/bench-ranks.sh [BATCH...]   (default 128 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x build/dptrain ] || tools/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
batches=("$@")
[ ${#batches[@]} -gt 0 ] || batches=(128 1024)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$ROOT/build/dptrain" synth --rows 60000 --features 784 --targets 10 -o mnistsize.h5 >/dev/null
cat >job.cfg <<'CFG'
name = "mnist_sized";
data = { file = "mnistsize.h5"; };
model = ( { type = "dense"; units = 128; activation = "relu"; }, { type = "dense"; units = 10; } );
fit = { epochs = 1; batch_size = 128; loss = "mse"; metrics = ["mae"]; optimizer = { name = "adam"; }; };
CFG
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d[sys.argv[2]]; print(v if not isinstance(v, list) else ' '.join('%.2f' % x for x in v))" "$@"; }
rows=()
for b in "${batches[@]}"; do
  base=""
  for cfg in "1 1" "1 2" "2 1"; do
    set -- $cfg
    P=$1 T=$2
    mpirun --oversubscribe --bind-to none -np "$P" "$ROOT/build/dptrain" fit job.cfg --set fit.batch_size="$b" \
      --set fit.threads="$T" --run-dir "r$P-$T-$b" >/dev/null
    sps=$(field "r$P-$T-$b/summary.json" samples_per_second)
    [ -n "$base" ] || base=$sps
    rows+=("$(printf '| %5s | %5s | %7s | %10.0f | %6.2fx | %9s | %-11s | %-11s | %-11s |' "$b" "$P" "$T" "$sps" \
      "$(awk -v a="$sps" -v b="$base" 'BEGIN{print a/b}')" \
      "$(awk -v a="$sps" -v b="$base" -v p="$P" -v t="$T" 'BEGIN{printf "%.0f%%", 100*a/b/(p*t)}')" \
      "$(field "r$P-$T-$b/summary.json" compute_seconds_per_rank)" \
      "$(field "r$P-$T-$b/summary.json" allreduce_seconds_per_rank)" \
      "$(field "r$P-$T-$b/summary.json" data_wait_seconds_per_rank)")")
  done
done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "| batch | ranks | threads | samples/s | speed-up | efficiency | compute s | allreduce s | data s |"
echo "|-------|-------|---------|-----------|----------|------------|-------------|-------------|-------------|"
printf '%s\n' "${rows[@]}"
