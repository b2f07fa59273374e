#!/usr/bin/env bash
# Shows that a change of the code's shape changed nothing it computes: builds two versions of
# dptrain (CPU backend), runs the same jobs with both and compares every checkpoint they wrote bit
# for bit (tools/compare-checkpoints.py: weights, optimizer state, normalization, history and
# position; only what measures time is left out).
#   tools/compare-commits.sh [OLD [NEW]]    OLD default HEAD~1, NEW default the working tree
# The jobs: cancer_mlp to the end, mnist_cnn for 200 steps, seed_mlp on 4,096 synthetic rows,
# cancer_mlp on 2 MPI ranks, and a run stopped by SIGTERM mid-epoch and resumed. One thread each.
# Needs the example data in $DPTRAIN_DATA (default ../shared/data); about 5 minutes on 2 cores.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
data=${DPTRAIN_DATA:-$src/../shared/data}
old=${1:-HEAD~1}
new=${2:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
scratch=$(mktemp -d /tmp/dptrain-compare.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for f in cancer/cancer_data.csv mnist/train-images-idx3-ubyte.gz; do
  [ -f "$data/$f" ] || { echo "compare-commits: $data/$f not found (set DPTRAIN_DATA)" >&2; exit 2; }
done

# checkout NAME REV: the source of REV (the working tree when REV is empty) in $scratch/NAME/src
checkout() {
  mkdir -p "$scratch/$1/src"
  if [ -z "$2" ]; then
    (cd "$src" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$scratch/$1/src"
  else
    (cd "$src" && git archive "$2") | tar -xf - -C "$scratch/$1/src"
  fi
}
# build NAME: dptrain of $scratch/NAME/src, CPU backend only
build() {
  cmake -S "$scratch/$1/src" -B "$scratch/$1/build" -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=OFF \
    >"$scratch/$1/build.log" 2>&1 && cmake --build "$scratch/$1/build" -j "$(nproc)" --target dptrain \
    >>"$scratch/$1/build.log" 2>&1 || { tail -20 "$scratch/$1/build.log"; echo "compare-commits: $1 does not build" >&2; exit 1; }
}
# run NAME: the jobs, with that version, in $scratch/NAME/work
run() {
  local D=$scratch/$1/build/dptrain J=$scratch/$1/src/jobs one=(--set fit.threads=1 --progress lines)
  mkdir -p "$scratch/$1/work" && cd "$scratch/$1/work" || exit 1
  {
    "$D" import csv --x "$data/cancer/cancer_data.csv" --y "$data/cancer/cancer_target.csv" -o cancer.h5 --test-split 0.3 --seed 7
    "$D" import mnist "$data/mnist" -o mnist.h5
    "$D" fit "$J/cancer_mlp.cfg" "${one[@]}" --run-dir cancer
    "$D" fit "$J/mnist_cnn.cfg" "${one[@]}" --set fit.epochs=1 --set fit.steps_per_epoch=200 --run-dir mnist
    "$D" fit "$J/seed_mlp.cfg" "${one[@]}" --set data.synthetic.rows=4096 --run-dir seed
    mpirun --oversubscribe --bind-to none -np 2 "$D" fit "$J/cancer_mlp.cfg" "${one[@]}" --run-dir cancer2
    "$D" synth --rows 20000 --features 10 --seed 2 -o r.h5
    printf '%s\n' 'data = { file = "r.h5"; validation_split = 0.2; normalize = "standard"; };' \
      'model = ( { type = "dense"; units = 64; activation = "relu"; }, { type = "dropout"; rate = 0.3; }, { type = "dense"; units = 1; } );' \
      'fit = { epochs = 3; batch_size = 64; loss = "mse"; metrics = ["mae"]; seed = 3; checkpoint = { every_steps = 40; }; };' >r.cfg
    DPTRAIN_TEST_SIGTERM_AT_STEP=310 "$D" fit r.cfg "${one[@]}" --run-dir resumed
    "$D" fit r.cfg "${one[@]}" --run-dir resumed --resume auto
  } >"$scratch/$1/jobs.log" 2>&1
  cd "$src" || exit 1
}

echo "compare-commits: old = ${old}, new = ${new:-the working tree}"
checkout old "$old" && checkout new "$new"
build old && build new
for v in old new; do
  start=$EPOCHREALTIME
  run $v
  echo "$v: jobs ran in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
done
grep -q "^Resumed from resumed/last.h5: epoch 2 continues at step 61" "$scratch/new/jobs.log" ||
  echo "note: the stopped run did not resume where expected: $(grep -m1 '^Resum' "$scratch/new/jobs.log")"
differences=0 compared=0
printf '| %-22s | %s |\n|------------------------|--------|\n' "checkpoint" "result"
for f in $(cd "$scratch/old/work" && find . -name '*.h5' -path './*/*' | sort); do
  compared=$((compared + 1))
  if [ ! -f "$scratch/new/work/$f" ]; then
    r="missing in new"
  else
    r=$(/usr/bin/python3 "$src/tools/compare-checkpoints.py" "$scratch/old/work/$f" "$scratch/new/work/$f" | tail -1)
  fi
  case $r in *" 0 differences") ;; *) differences=$((differences + 1)) ;; esac
  printf '| %-22s | %s |\n' "${f#./}" "$r"
done
echo "compare-commits: $compared checkpoints, $differences differ"
[ "$compared" -gt 0 ] && [ "$differences" -eq 0 ]
