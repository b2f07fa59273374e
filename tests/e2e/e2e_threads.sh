#!/usr/bin/env bash
# The threads of a training run under ThreadSanitizer (build-tsan/, tools/test.sh): the batch
# reader thread beside the training thread, on the CPU and on the emulated device, where the
# reader's fence waits run queued device work (DPTRAIN_EMULATE_DEFER) and NCCL sums run in
# buckets. Any report fails the run. Compute threads stay at 1: libgomp is not instrumented, so
# its workers' hand-offs would be reported as races that are not there.
#   e2e_threads.sh DPTRAIN SRC DPTRAIN_EMULATED
source "$(dirname "$0")/e2e_lib.sh"
need_data cancer/cancer_data.csv
EMULATED=$(realpath "$3")
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
"$DPTRAIN" import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" -o cancer.h5 \
  --test-split 0.3 --seed 7 >/dev/null || { fail "import"; finish; }
many=(--set fit.batch_size=32 --set fit.epochs=3 --set fit.threads=1 --progress lines)
# run NAME BINARY ARGS...: a fit that must end cleanly with no ThreadSanitizer report
run() {
  local name=$1 bin=$2
  shift 2
  "$bin" fit "$SRC/jobs/cancer_mlp.cfg" --run-dir "$name" "${many[@]}" "$@" >"$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ] && ! grep -q "ThreadSanitizer" "$name.log"; then
    pass "$name: $(grep -c '^Epoch' "$name.log") epochs, no ThreadSanitizer report"
  else
    fail "$name: exit $rc: $(grep -m1 -A4 'WARNING: ThreadSanitizer' "$name.log" | tr '\n' ' ' || tail -2 "$name.log")"
  fi
}
run cpu "$DPTRAIN" --device cpu
run device "$EMULATED" --device cuda
DPTRAIN_EMULATE_DEFER=1 run device_deferred "$EMULATED" --device cuda
DPTRAIN_EMULATE_DEFER=1 run device_deferred_nccl "$EMULATED" --device cuda --set 'fit.allreduce="nccl"' \
  --set fit.allreduce_bucket_mb=0.005
finish
