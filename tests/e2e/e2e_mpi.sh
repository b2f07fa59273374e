#!/usr/bin/env bash
# Data parallelism over MPI ranks: the same job on 1, 2 and 4 ranks gives the same weights (dropout
# and shuffling on, a global batch that 4 does not divide); a corrupt shard ends the whole job
# promptly; a 2-rank run stopped by SIGTERM and resumed on 2 ranks ends bit-identical.
source "$(dirname "$0")/e2e_lib.sh"
command -v mpirun >/dev/null || skip_test "mpirun not found"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun --oversubscribe --bind-to none)
CMP=$SRC/tests/e2e/compare_weights.py
have_h5py || skip_test "python3-h5py needed to compare weights"

"$DPTRAIN" synth --rows 4000 --features 10 --seed 2 -o a.h5 >/dev/null
"$DPTRAIN" synth --rows 1000 --features 10 --seed 3 -o b.h5 >/dev/null
cat >p.cfg <<'CFG'
name = "ranks";
data = { file = ["a.h5", "b.h5"]; validation_split = 0.2; normalize = "standard"; shuffle = true; };
model = ( { type = "dense"; units = 64; activation = "relu"; }, { type = "dropout"; rate = 0.3; },
          { type = "dense"; units = 32; activation = "tanh"; }, { type = "dense"; units = 1; } );
fit = { epochs = 3; batch_size = 66; loss = "mse"; metrics = ["mae"]; seed = 4; threads = 1; };
CFG
for P in 1 2 4; do
  "${MPIRUN[@]}" -np $P "$DPTRAIN" fit p.cfg --run-dir "p$P" >"p$P.log" 2>&1 || fail "fit with $P ranks: $(tail -3 "p$P.log")"
done
for P in 2 4; do
  out=$(/usr/bin/python3 "$CMP" p1/last.h5 "p$P/last.h5" 1e-5) && pass "1 vs $P ranks: $out" || fail "1 vs $P ranks: $out"
done
grep -q '"ranks": 4' p4/summary.json && grep -q '"rows_read_per_rank": \[' p4/summary.json &&
  pass "summary.json has per-rank figures" || fail "summary.json per-rank figures"
grep -q "Ranks: 4 (global batch 66: 16-17 rows per rank)" p4.log && pass "uneven split is said" || fail "uneven split not said"

# Each rank reads about 1/P of the rows it trains on: 3 epochs x 4000 training rows + 1000
# validation rows (read once: the same slice every time) = 13000 row reads for the whole job.
# (One rank keeps a data set that fits its buffer loaded across epochs and reads 5000.)
/usr/bin/python3 - p4/summary.json <<'PY' && pass "each of 4 ranks read about 1/4 of the rows" || fail "rows read per rank"
import json, sys
four = json.load(open(sys.argv[1]))["rows_read_per_rank"]
print("rows read per rank (4 ranks):", four, "of 13000")
assert all(0.9 * 13000 / 4 <= r <= 1.1 * 13000 / 4 for r in four), four
PY

# All-reduce buckets started during backward (fit.allreduce_bucket_mb; here 1000 floats, so the
# 2912-float arena goes as two sums): 2 ranks give bit-identical weights to ONE all-reduce after
# backward (a sum of two is exact either way). Batch 1999 over 4000 rows leaves a last batch of 2
# rows, so 2 of 4 ranks have no rows: they must start the same buckets, or the job hangs.
bk=(--set fit.allreduce_bucket_mb=0.004)
"${MPIRUN[@]}" -np 2 "$DPTRAIN" fit p.cfg --run-dir p2b "${bk[@]}" >p2b.log 2>&1 || fail "bucketed, 2 ranks: $(tail -3 p2b.log)"
same=1
for l in dense dense_1 dense_2; do h5diff -q p2/last.h5 p2b/last.h5 /$l /$l >/dev/null 2>&1 || same=0; done
[ $same -eq 1 ] && pass "2 ranks: bucketed all-reduce bit-identical to one all-reduce" || fail "2 ranks: buckets change the weights"
"$DPTRAIN" fit p.cfg --run-dir e1 --set fit.batch_size=1999 >/dev/null 2>&1 || fail "batch 1999, 1 rank"
timeout 120 "${MPIRUN[@]}" -np 4 "$DPTRAIN" fit p.cfg --run-dir e4 --set fit.batch_size=1999 "${bk[@]}" >e4.log 2>&1 ||
  fail "bucketed, 4 ranks, empty slices: exit $? $(tail -3 e4.log)"
out=$(/usr/bin/python3 "$CMP" e1/last.h5 e4/last.h5 1e-5) && pass "bucketed, 4 ranks, 2 without rows in the last batch: $out" ||
  fail "bucketed, 4 ranks, empty slices: $out"

# dptrain shard + a glob in data.file: the same rows in the same order, the same training
"$DPTRAIN" synth --rows 5000 --features 10 --seed 2 -o all.h5 >/dev/null
"$DPTRAIN" shard all.h5 -n 3 >/dev/null || fail "shard"
[ -f all-00000-of-00003.h5 ] && [ -f all-00002-of-00003.h5 ] && pass "shard wrote 3 files" || fail "shard files"
sed 's/file = \["a.h5", "b.h5"\];/file = "all.h5";/' p.cfg >one.cfg
sed 's/file = \["a.h5", "b.h5"\];/file = "all-*-of-00003.h5";/' p.cfg >glob.cfg
"${MPIRUN[@]}" -np 2 "$DPTRAIN" fit one.cfg --run-dir one >/dev/null 2>&1 || fail "fit on one file"
"${MPIRUN[@]}" -np 2 "$DPTRAIN" fit glob.cfg --run-dir glob >glob.log 2>&1 || fail "fit on shards: $(tail -2 glob.log)"
same=1
for l in dense dense_1 dense_2; do h5diff -q one/last.h5 glob/last.h5 /$l /$l >/dev/null 2>&1 || same=0; done
[ $same -eq 1 ] && pass "3 shards by glob train bit-identically to the single file" || fail "shards differ from the single file"
sed 's/file = \["a.h5", "b.h5"\];/file = "none-*.h5";/' p.cfg >noglob.cfg
expect_error 2 "noglob.cfg:2: data.file: 'none-*.h5' matches no file" "$DPTRAIN" fit noglob.cfg

# A corrupt shard: every rank that opens it fails; the job ends within 30 s with the message.
head -c 2000 b.h5 >bad.h5
sed 's/"b.h5"/"bad.h5"/' p.cfg >bad.cfg
start=$(date +%s)
timeout 60 "${MPIRUN[@]}" -np 2 "$DPTRAIN" fit bad.cfg --run-dir bad >bad.log 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $elapsed -le 30 ] && grep -q "\[rank [01]/2\] bad.h5" bad.log; then
  pass "corrupt shard: exit $rc after ${elapsed}s with the rank's message"
else
  fail "corrupt shard: exit $rc after ${elapsed}s: $(grep -m2 error bad.log)"
fi

# 2 ranks: SIGTERM, resume on 2 ranks, bit-identical to an uninterrupted 2-rank run. The stop goes
# through 'dptrain mpirun', which keeps exit status 3 (Open MPI's mpirun given a SIGTERM exits 1).
sed 's/epochs = 3;/epochs = 400;/; s/units = 64;/units = 256;/' p.cfg >long.cfg
"${MPIRUN[@]}" -np 2 "$DPTRAIN" fit long.cfg --run-dir straight2 >s2.log 2>&1 || fail "2-rank straight run"
"$DPTRAIN" mpirun "${MPIRUN[@]:1}" -np 2 fit long.cfg --run-dir stop2 >t2.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^Epoch 2/' t2.log && break; sleep 0.1; done
start=$(date +%s.%N)
kill -TERM $pid
wait $pid
rc=$?
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ $rc -eq 3 ] && grep -q "Stopped by SIG" t2.log && [ -f stop2/last.h5 ]; then
  pass "dptrain mpirun, SIGTERM: 2 ranks stopped at a step boundary, wrote last.h5, exit 3 after $took s"
else
  fail "dptrain mpirun, SIGTERM: exit $rc after $took s: $(grep -m2 -E 'Stopped|error' t2.log)"
fi
expect_error 2 "cannot run '/nonexistent/mpirun'" env DPTRAIN_MPIRUN=/nonexistent/mpirun "$DPTRAIN" mpirun -np 2 fit long.cfg
expect_error 2 "no dptrain command" "$DPTRAIN" mpirun -np 2
"${MPIRUN[@]}" -np 2 "$DPTRAIN" fit long.cfg --run-dir stop2 --resume auto >r2.log 2>&1 || fail "2-rank resume: $(tail -3 r2.log)"
same=1
for l in dense dense_1 dense_2; do h5diff -q straight2/last.h5 stop2/last.h5 /$l /$l >/dev/null 2>&1 || same=0; done
[ $same -eq 1 ] && pass "2 ranks stop + resume: bit-identical" || fail "2 ranks stop + resume: weights differ"

# A rank that stops (SIGSTOP: a hung node) ends the job within fit.collective_timeout plus 10 s, with
# a message naming the collective, the step and the rank that no longer answers, and exit status 5
# (a rank was lost: the batch scripts requeue); a rank that dies ends it too.
rank_pid() { # RUN_DIR RANK: the pid of that rank of the fit into RUN_DIR
  local p
  for p in $(pgrep -f -- "--run-dir $1\$"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
for how in STOP KILL; do
  "${MPIRUN[@]}" -np 2 "$DPTRAIN" fit long.cfg --set fit.collective_timeout=5 --run-dir "hang_$how" >"hang_$how.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q '^Epoch 1/' "hang_$how.log" && break; sleep 0.1; done
  victim=$(rank_pid "hang_$how" 1)
  start=$(date +%s)
  [ -n "$victim" ] && kill -"$how" "$victim"
  for _ in $(seq 400); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -0 $pid 2>/dev/null && { kill -9 $pid; pkill -9 -f -- "--run-dir hang_$how\$"; }
  wait $pid
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
  if [ -z "$victim" ]; then
    fail "$how: rank 1 of the run not found: $(tail -2 "hang_$how.log")"
  elif [ $rc -ne 0 ] && [ $elapsed -le 15 ] &&
       { [ $how = KILL ] || { [ $rc = 5 ] && grep -q "\[rank 0/2 on [^]]*\] .* did not complete within fit.collective_timeout = 5 s (epoch [0-9]*, step [0-9]*): rank 1 on [^ ]* does not answer" "hang_$how.log"; }; }; then
    pass "rank 1 got SIG$how: the job ended after ${elapsed}s (exit $rc)$( [ $how = STOP ] && echo ": $(grep -o 'rank 0/2 on [^;]*' "hang_$how.log" | head -1)")"
  else
    fail "rank 1 got SIG$how: exit $rc after ${elapsed}s: $(grep -m2 -E 'error|rank' "hang_$how.log")"
  fi
done
finish
