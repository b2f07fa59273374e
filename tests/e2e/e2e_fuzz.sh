#!/usr/bin/env bash
# Damaged inputs (job files, checkpoints, data sets, IDX and CSV files, command lines) get one
# clear line and exit status 2, never a crash, hang or sanitizer report (tests/e2e/fuzz_inputs.py).
# DPTRAIN_FUZZ_ITERATIONS (default 150) and DPTRAIN_FUZZ_SEED (default 1) choose how many and which;
# a finding prints the seed and iteration, and --only replays it.
source "$(dirname "$0")/e2e_lib.sh"
need_data cancer/cancer_data.csv
need_data mnist/train-images-idx3-ubyte.gz
iterations=${DPTRAIN_FUZZ_ITERATIONS:-150}
seed=${DPTRAIN_FUZZ_SEED:-1}
if /usr/bin/python3 "$SRC/tests/e2e/fuzz_inputs.py" "$DPTRAIN" "$DATA" --iterations "$iterations" --seed "$seed" \
  --keep "$WORK/fuzz" >fuzz.log 2>&1; then
  pass "$iterations damaged inputs, no findings: $(tail -1 fuzz.log)"
else
  cat fuzz.log
  fail "fuzzing found problems (seed $seed); replay one with tests/e2e/fuzz_inputs.py DPTRAIN DATA --seed $seed --only I"
fi
finish
