#!/usr/bin/env bash
# The seed tutorial's job, scaled down: synthetic rows generated on the fly train exactly like the
# same rows written by `dptrain synth`; fit writes its files; the loss goes down; --dry-run prints
# the resolved job with overrides; idle OpenMP and OpenBLAS threads are set to sleep
# soon instead of spinning.
source "$(dirname "$0")/e2e_lib.sh"
JOB=$SRC/jobs/seed_mlp.cfg
small=(--set data.synthetic.rows=3000 --set model.[1].units=64 --set model.[3].units=64
       --set model.[4].units=64 --set model.[5].units=64 --set fit.batch_size=100 --set fit.epochs=3 --set fit.seed=5)

"$DPTRAIN" fit "$JOB" "${small[@]}" --dry-run >dry.txt && grep -q "units = 64;" dry.txt && grep -q "epochs = 3;" dry.txt &&
  pass "--dry-run prints the resolved job" || fail "--dry-run"

"$DPTRAIN" fit "$JOB" "${small[@]}" --run-dir onfly >onfly.log 2>&1 || fail "fit on synthetic source: $(tail -3 onfly.log)"
"$DPTRAIN" synth --rows 3000 --features 10 --targets 1 --seed 5 -o synth.h5 >/dev/null || fail "synth"
"$DPTRAIN" fit "$JOB" "${small[@]}" --set data.source=file --set data.file=synth.h5 --set data.shuffle=false \
  --run-dir fromfile >file.log 2>&1 || fail "fit on synth file: $(tail -3 file.log)"
if cmp -s <(grep -v seconds onfly/summary.json | grep -v samples | grep -v peak) \
          <(grep -v seconds fromfile/summary.json | grep -v samples | grep -v peak); then
  pass "synthetic source and synth file train identically"
else
  fail "synthetic source and synth file differ: $(diff onfly/summary.json fromfile/summary.json | head -6)"
fi
if command -v h5diff >/dev/null; then
  h5diff onfly/last.h5 fromfile/last.h5 /dense_4 /dense_4 >/dev/null && pass "identical final weights (h5diff)" ||
    fail "final weights differ"
else
  skip_part "h5diff not found: the final weights comparison"
fi
first=$(sed -n 2p onfly/history.csv | cut -d, -f2)
last=$(sed -n 4p onfly/history.csv | cut -d, -f2)
is_number "$first" && holds "$last" "v < $first" && pass "loss decreases ($first -> $last)" ||
  fail "loss did not decrease ($first -> $last)"
grep -q '"samples_per_second"' onfly/summary.json && pass "summary.json has samples/s" || fail "summary.json"
grep -q "^Epoch 3/3 - 30/30 - .* - loss: .* - mae: " onfly.log && pass "one progress line per epoch in a log" ||
  fail "progress lines: $(grep Epoch onfly.log | head -2)"
"$DPTRAIN" inspect onfly/last.h5 | grep -q "epoch 3" && pass "inspect shows the epoch" || fail "inspect last.h5"
# The environment a run trains with (src/cmd/main.c sets both libraries' idle threads to sleep soon and
# starts itself again; a user's own value is kept).
thread_env() { # [VAR=VALUE ...]: the two settings of a running fit started with only these, from /proc
  env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT "$@" "$DPTRAIN" fit "$JOB" "${small[@]}" --set fit.epochs=100000 \
    --run-dir envrun >/dev/null 2>&1 &
  local pid=$! i seen=
  for i in $(seq 100); do
    seen=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -E "^(OMP_WAIT_POLICY|OPENBLAS_THREAD_TIMEOUT)=" |
      sort | tr '\n' ' ')
    case $seen in *OMP_WAIT_POLICY*OPENBLAS*|*OPENBLAS*OMP_WAIT_POLICY*) break ;; esac
    sleep 0.1
  done
  kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
  echo "$seen"
}
seen=$(thread_env)
[ "$seen" = "OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=20 " ] && pass "idle threads sleep: $seen" ||
  fail "thread settings of a run: '$seen'"
seen=$(thread_env OMP_WAIT_POLICY=ACTIVE OPENBLAS_THREAD_TIMEOUT=9)
[ "$seen" = "OMP_WAIT_POLICY=ACTIVE OPENBLAS_THREAD_TIMEOUT=9 " ] && pass "a user's own thread settings are kept" ||
  fail "a user's thread settings: '$seen'"
# Progress in a log: with output not on a terminal, a line within the epoch every --progress-every
# seconds (the seed job's epochs take minutes); and under mpirun, which gives rank 0 a terminal of
# its own (here inside `script`, which gives mpirun one), lines rather than a bar of \r and escapes.
slow=(--set data.synthetic.rows=2048 --set fit.batch_size=512 --set fit.epochs=1)
"$DPTRAIN" fit "$JOB" "${slow[@]}" --progress-every 0.3 --run-dir every >every.log 2>&1 || fail "--progress-every: $(tail -2 every.log)"
within=$(grep -c '^Epoch 1/1 - [1-3]/4 - ETA' every.log)
[ "$within" -ge 1 ] && grep -q '^Epoch 1/1 - 4/4 - ' every.log && pass "--progress-every 0.3: $within line(s) within the epoch, then its line" ||
  fail "--progress-every: $(grep -c . every.log) lines: $(grep '^Epoch' every.log | head -3)"
if command -v mpirun >/dev/null && command -v script >/dev/null; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 script -qec \
    "mpirun --oversubscribe -np 1 '$DPTRAIN' fit '$JOB' ${slow[*]} --run-dir tty" tty.log >/dev/null 2>&1 ||
    fail "fit under mpirun in a terminal: $(tail -2 tty.log)"
  if grep -q '^Epoch 1/1 - 4/4' tty.log && ! grep -q $'\e\[K' tty.log; then
    pass "under mpirun with a terminal: lines, no escape codes"
  else
    fail "under mpirun with a terminal: $(grep -c $'\e\[K' tty.log) escape codes"
  fi
else
  skip_part "mpirun or script not found: progress under mpirun"
fi
# In a 60-column terminal the live bar narrows so its line fits, instead of wrapping on every redraw
if command -v script >/dev/null; then
  script -qec "stty cols 60; '$DPTRAIN' fit '$JOB' ${slow[*]} --progress bar --run-dir narrow" narrow.log >/dev/null 2>&1 ||
    fail "fit with a bar in 60 columns: $(tail -2 narrow.log)"
  widest=$(/usr/bin/python3 -c '
import re, sys
text = open(sys.argv[1], "rb").read().decode("utf8", "replace")
live = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s) for line in text.split("\n") for s in line.split("\r") if "ETA" in s]
print(max(map(len, live)) if live else -1)' narrow.log)
  holds "$widest" 'v > 0 && v <= 60' && pass "a 60-column terminal: the live line is $widest columns" ||
    fail "a 60-column terminal: the live line is '$widest' columns"
else
  skip_part "script not found: the bar in a narrow terminal"
fi
finish
