#!/usr/bin/env bash
# Stop anywhere and resume: a run stopped by SIGTERM mid-epoch, one stopped between epochs, one
# stopped mid-epoch while streaming its data in windows, and one killed with SIGKILL again and again
# (during checkpoint writes too) all end bit-identical to an uninterrupted run, and their logs show
# that they resumed where they stopped (a restart from scratch would give the same weights too).
# Bad checkpoints given to --resume are refused with exit 2 and left untouched.
# The SIGTERMs come from the process itself at a given step (DPTRAIN_TEST_SIGTERM_AT_STEP) and the
# kills at random times scaled by the uninterrupted run's duration, so the verdicts do not depend on
# the machine's speed.
source "$(dirname "$0")/e2e_lib.sh"

# stopped_at LOG: "EPOCH STEP" of a "Stopped by SIGTERM at epoch E, step S/N" line; resumed_at LOG:
# "EPOCH STEP" of the "Resumed from ...: epoch E continues at step S" line (S: the first step to run).
stopped_at() { sed -n 's/^Stopped by SIGTERM at epoch \([0-9]*\), step \([0-9]*\)\/[0-9]*;.*/\1 \2/p' "$1"; }
resumed_at() { sed -n 's/^Resumed from [^:]*: epoch \([0-9]*\) continues at step \([0-9]*\) .*/\1 \2/p' "$1"; }
# stop_and_resume NAME STEP CFG ARGS...: a fit into run dir NAME that sends itself SIGTERM at optimizer
# step STEP must end with exit 3 mid-epoch; the resumed fit must say it continues at the next step.
stop_and_resume() {
  local name=$1 at=$2 cfg=$3
  shift 3
  DPTRAIN_TEST_SIGTERM_AT_STEP=$at "$DPTRAIN" fit "$cfg" --run-dir "$name" "$@" >"$name.log" 2>&1
  local rc=$? stop resumed
  stop=$(stopped_at "$name.log")
  if [ $rc -eq 3 ] && [ -n "$stop" ]; then pass "$name: SIGTERM at step $at: exit 3, stopped at epoch/step $stop"
  else fail "$name: SIGTERM at step $at: exit $rc: $(tail -2 "$name.log")"; fi
  "$DPTRAIN" fit "$cfg" --run-dir "$name" --resume auto "$@" >"$name-resumed.log" 2>&1 ||
    fail "$name: resume: $(tail -2 "$name-resumed.log")"
  resumed=$(resumed_at "$name-resumed.log")
  [ -n "$stop" ] && [ "$resumed" = "${stop% *} $((${stop#* } + 1))" ] &&
    pass "$name: the resumed run continues at epoch/step $resumed" ||
    fail "$name: stopped at '$stop' but resumed at '$resumed': $(grep -m1 -E '^(Resum|Start)' "$name-resumed.log")"
}

"$DPTRAIN" synth --rows 20000 --features 10 --seed 2 -o r.h5 >/dev/null || { fail synth; finish; }
cat >r.cfg <<'CFG'
name = "resume";
data = { file = "r.h5"; validation_split = 0.2; normalize = "standard"; shuffle = true; };
model = ( { type = "dense"; units = 256; activation = "relu"; }, { type = "dropout"; rate = 0.3; },
          { type = "dense"; units = 256; activation = "tanh"; }, { type = "dense"; units = 1; } );
fit = { epochs = 4; batch_size = 64; loss = "mse"; metrics = ["mae"]; seed = 3;
        checkpoint = { monitor = "val_loss"; every_steps = 40; keep = 2; };
        early_stopping = { monitor = "val_loss"; patience = 10; restore_best_weights = true; }; };
CFG
layers=(dense dense_1 dense_2) # for same_weights
start=$EPOCHREALTIME
"$DPTRAIN" fit r.cfg --run-dir straight >straight.log 2>&1 || fail "straight run: $(tail -2 straight.log)"
run_seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')

# 1. SIGTERM mid-epoch (step 130 of epoch 1's 250; a checkpoint every 40 steps), then --resume auto
stop_and_resume term 130 r.cfg
[ "$(stopped_at term.log)" = "1 130" ] || fail "term: stopped at '$(stopped_at term.log)', not epoch 1 step 130"
same_weights straight/last.h5 term/last.h5 && pass "SIGTERM + resume: bit-identical final weights" ||
  fail "SIGTERM + resume: final weights differ"
diff <(cut -d, -f1-5 straight/history.csv) <(cut -d, -f1-5 term/history.csv) >/dev/null &&
  pass "SIGTERM + resume: same history" || fail "history differs after resume"
ls term/last-e*.h5 >/dev/null 2>&1 && [ "$(ls term/last-e*.h5 | wc -l)" -le 2 ] && pass "keep = 2 older checkpoints" ||
  fail "kept checkpoints: $(ls term)"

# 1b. BatchNormalization with a cosine schedule with warm-up, and with ReduceLROnPlateau firing
# (min_delta so large that every second epoch reduces the rate; Adam with amsgrad, whose third
# state array the checkpoint keeps): stopped mid-epoch and resumed,
# bit-identical to a straight run (weights and moving statistics), the same rates in history.csv.
cat >rates.cfg <<'CFG'
name = "rates";
data = { file = "r.h5"; validation_split = 0.2; normalize = "standard"; shuffle = true; };
model = ( { type = "dense"; units = 32; activation = "gelu"; }, { type = "batch_normalization"; },
          { type = "dense"; units = 16; activation = "elu"; use_bias = false; },
          { type = "batch_normalization"; center = false; momentum = 0.9; }, { type = "dense"; units = 1; } );
fit = { epochs = 6; batch_size = 128; loss = "mse"; seed = 5; optimizer = { name = "adam"; amsgrad = true; learning_rate = 0.01; };
        reduce_lr_on_plateau = { monitor = "val_loss"; factor = 0.5; patience = 1; min_delta = 10.0; }; };
CFG
for kind in plateau cosine; do
  if [ $kind = plateau ]; then cfg=rates.cfg; else
    sed -e 's/learning_rate = 0.01; };/learning_rate = { name = "cosine_decay"; initial_learning_rate = 0.0; decay_steps = 400; warmup_target = 0.003; warmup_steps = 200; }; }; };/' \
        -e '/reduce_lr_on_plateau/d' rates.cfg >cosine.cfg
    cfg=cosine.cfg
  fi
  "$DPTRAIN" fit $cfg --run-dir "${kind}_straight" --progress lines >"${kind}_straight.log" 2>&1 ||
    fail "$kind: straight run: $(tail -2 "${kind}_straight.log")"
  stop_and_resume "${kind}_stop" 290 $cfg
  layers=(dense dense_1 dense_2 batch_normalization batch_normalization_1)
  same_weights "${kind}_straight/last.h5" "${kind}_stop/last.h5" && pass "$kind: SIGTERM + resume: bit-identical final weights" ||
    fail "$kind: SIGTERM + resume: final weights differ"
  diff <(cut -d, -f1-3,5 "${kind}_straight/history.csv") <(cut -d, -f1-3,5 "${kind}_stop/history.csv") >/dev/null &&
    pass "$kind: the same losses and rates in history.csv" || fail "$kind: history differs after resume"
done
layers=(dense dense_1 dense_2) # the other sections' model
rates=$(cut -d, -f5 plateau_straight/history.csv | tail -n +2 | sort -u | wc -l)
fired=$(grep -c "ReduceLROnPlateau reducing learning rate" plateau_straight.log)
[ "$fired" -ge 2 ] && [ "$rates" -ge 3 ] && grep -q "ReduceLROnPlateau" plateau_stop-resumed.log &&
  pass "ReduceLROnPlateau fired $fired times ($rates rates), also after the resume" ||
  fail "ReduceLROnPlateau: fired $fired times, $rates rates: $(grep -m3 ReduceLR plateau_straight.log)"
# 125 steps an epoch: 0.003 * 125 / 200 after epoch 1, 0.003 * (1 + cos(pi * 50 / 400)) / 2 after epoch 2
grep -q "learning_rate: 0.001875" cosine_straight.log &&
  awk -F, 'NR == 2 { a = $5 } NR == 3 { b = $5 } END { exit !(a > 0.0018749 && a < 0.0018751 && b > 0.0028858 && b < 0.0028859 && $5 < b) }' \
    cosine_straight/history.csv &&
  pass "cosine warm-up: the rate rises, then decays (progress line and history.csv)" ||
  fail "cosine warm-up rates: $(cut -d, -f5 cosine_straight/history.csv | tr '\n' ' ')"

# 2. Stop between epochs: 2 epochs, then resume to 4 (changing epochs is allowed and said)
"$DPTRAIN" fit r.cfg --run-dir between --set fit.epochs=2 >b1.log 2>&1 || fail "2-epoch run"
"$DPTRAIN" fit r.cfg --run-dir between --resume auto >b2.log 2>&1 || fail "resume to 4 epochs: $(tail -2 b2.log)"
grep -q "epochs changed from 2 to 4" b2.log && pass "changed epochs are said" || fail "no note on changed epochs"
# restore_best_weights applied at the end of the 2-epoch run changes what it stored as last.h5,
# so compare the between-epochs run without it.
"$DPTRAIN" fit r.cfg --run-dir straight_nr --set fit.early_stopping.restore_best_weights=false >/dev/null 2>&1
"$DPTRAIN" fit r.cfg --run-dir between_nr --set fit.epochs=2 --set fit.early_stopping.restore_best_weights=false >/dev/null 2>&1
"$DPTRAIN" fit r.cfg --run-dir between_nr --resume auto --set fit.early_stopping.restore_best_weights=false >/dev/null 2>&1
same_weights straight_nr/last.h5 between_nr/last.h5 && pass "stop between epochs + resume: bit-identical" ||
  fail "stop between epochs + resume: weights differ"

# 3. SIGKILL at random moments, many times; last.h5 must always open and resume must work. Each run
# is killed a random time (up to a twelfth of the uninterrupted run's) after it has written a
# checkpoint of its own, so every run makes progress and the next one resumes, whatever the
# machine's speed; a kill may land in the next checkpoint's write. A run that finishes the job
# before its kill does not count, and the job starts over, until 12 kills have landed.
kills=0 attempts=0 resumed=0
inode() { stat -c %i killed/last.h5 2>/dev/null || echo none; }
while [ $kills -lt 12 ] && [ $attempts -lt 40 ]; do
  attempts=$((attempts + 1))
  log=k$attempts.log before=$(inode)
  "$DPTRAIN" fit r.cfg --run-dir killed --resume auto >"$log" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ "$(inode)" = "$before" ]; do sleep 0.005; done
  sleep "$(awk -v t="$run_seconds" -v r=$RANDOM 'BEGIN { printf "%.3f", t / 12 * r / 32768 }')"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  rc=$?
  grep -q "^Resumed from killed/last.h5" "$log" && resumed=$((resumed + 1))
  if [ $rc -eq 137 ]; then
    kills=$((kills + 1))
  elif [ $rc -eq 0 ]; then
    echo "note: run $attempts finished the job before its kill; starting the job over"
    rm -rf killed
  else
    fail "run $attempts: exit $rc: $(tail -2 "$log")"
  fi
  if [ -e killed/last.h5 ] && ! "$DPTRAIN" inspect killed/last.h5 >/dev/null 2>&1; then
    fail "after kill -9 number $kills, last.h5 does not open"
  fi
done
[ $kills -eq 12 ] && [ $resumed -ge 10 ] &&
  pass "12 kill -9s landed during training in $attempts runs, $resumed of them resumed (the run takes ${run_seconds} s)" ||
  fail "$kills kill -9s landed during training in $attempts runs, $resumed of them resumed"
"$DPTRAIN" fit r.cfg --run-dir killed --resume auto >kfinal.log 2>&1 || fail "final resume after kills: $(tail -2 kfinal.log)"
grep -Eq "^Resumed from killed/last.h5.* \(([1-9][0-9]*) optimizer steps done\)" kfinal.log &&
  pass "the final run resumed: $(grep -m1 '^Resumed' kfinal.log)" || fail "the final run did not resume: $(grep -m1 -E '^(Resum|Start)' kfinal.log)"
same_weights straight/last.h5 killed/last.h5 && pass "$kills x kill -9 + resume: bit-identical final weights" ||
  fail "kill -9 + resume: final weights differ"

# 4. Bad checkpoints are refused, exit 2, files untouched
cp straight/last.h5 good.h5
head -c 5000 good.h5 >truncated.h5
cp good.h5 corrupt.h5
printf 'garbage garbage garbage' | dd of=corrupt.h5 bs=1 seek=0 conv=notrunc 2>/dev/null
sums=$(md5sum truncated.h5 corrupt.h5 r.h5)
expect_error 2 "truncated.h5" "$DPTRAIN" fit r.cfg --run-dir bad1 --resume truncated.h5
expect_error 2 "corrupt.h5" "$DPTRAIN" fit r.cfg --run-dir bad2 --resume corrupt.h5
expect_error 2 "r.h5: not a dptrain checkpoint" "$DPTRAIN" fit r.cfg --run-dir bad3 --resume r.h5
expect_error 2 "nothere.h5: cannot open" "$DPTRAIN" fit r.cfg --run-dir bad4 --resume nothere.h5
expect_error 2 "layer 3 (r.cfg:4) has 256 units in the checkpoint but 128 in the job" \
  "$DPTRAIN" fit r.cfg --run-dir bad5 --resume good.h5 --set model.[2].units=128
sed 's/loss = "mse"; metrics = \["mae"\];/loss = "mse"; metrics = ["mae"]; optimizer = { name = "sgd"; };/' r.cfg >sgd.cfg
expect_error 2 "was trained with adam but sgd.cfg asks for sgd" "$DPTRAIN" fit sgd.cfg --run-dir bad6 --resume good.h5
[ "$sums" = "$(md5sum truncated.h5 corrupt.h5 r.h5)" ] && pass "refused files are untouched" || fail "a refused file changed"
# Checkpoints with impossible contents are refused before anything uses them.
if have_h5py; then
  edit_ck() { cp good.h5 "$1"; /usr/bin/python3 -c "import h5py, numpy as np; f = h5py.File('$1', 'r+'); $2" || fail "editing $1"; }
  edit_ck neg_epoch.h5 'f["dptrain"].attrs["epoch"] = np.int64(-5)'
  edit_ck huge_epoch.h5 'f["dptrain"].attrs["epoch"] = np.int64(2**62)'
  edit_ck neg_iter.h5 'f["dptrain"].attrs["iterations"] = np.int64(-1)'
  edit_ck nan_kernel.h5 'k = f["dense/dense/kernel:0"]; a = k[()]; a[0, 0] = np.nan; k[...] = a'
  edit_ck big_history.h5 'del f["dptrain/history"]; f["dptrain"].create_dataset("history", shape=(10**9, 7), dtype="f8", chunks=(1024, 7))'
  expect_error 2 "neg_epoch.h5: /dptrain epoch = -5 is impossible" "$DPTRAIN" fit r.cfg --run-dir bad7 --resume neg_epoch.h5
  expect_error 2 "huge_epoch.h5: /dptrain epoch = 4.6116860184273879e+18 is impossible" "$DPTRAIN" fit r.cfg --run-dir bad8 --resume huge_epoch.h5
  expect_error 2 "neg_iter.h5: /dptrain iterations = -1 is impossible" "$DPTRAIN" fit r.cfg --run-dir bad9 --resume neg_iter.h5
  expect_error 2 "nan_kernel.h5: weight dense/kernel holds a non-finite value" "$DPTRAIN" fit r.cfg --run-dir bad10 --resume nan_kernel.h5
  expect_error 2 "big_history.h5: /dptrain/history has an unexpected shape (1000000000 rows for 4 epochs)" \
    "$DPTRAIN" fit r.cfg --run-dir bad11 --resume big_history.h5
else
  skip_part "python3 with h5py not found: checkpoints with impossible contents"
fi
cmp -s good.h5 straight/last.h5 && pass "the resumed-from checkpoint is untouched" || fail "good.h5 changed"

# 5. Two SIGINTs: the second exits at once; last.h5 stays a valid checkpoint. Sent once the first
# checkpoint is there, while checkpoints are written at every step.
"$DPTRAIN" fit r.cfg --run-dir twice --set fit.checkpoint.every_steps=1 >twice.log 2>&1 &
pid=$!
for _ in $(seq 1000); do [ -e twice/last.h5 ] && break; sleep 0.01; done
kill -INT $pid
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || [ $rc -eq 3 ] && pass "double SIGINT exits ($rc)" || fail "double SIGINT exit $rc"
[ ! -e twice/last.h5 ] || "$DPTRAIN" inspect twice/last.h5 >/dev/null && pass "last.h5 intact after double SIGINT" ||
  fail "last.h5 broken after double SIGINT"

# 6. A loss that blows up stops with exit 4 and leaves the last good checkpoint as it was
sed 's/seed = 3;/seed = 3; optimizer = { name = "sgd"; lr = 0.01; };/' r.cfg >sgd_ok.cfg
"$DPTRAIN" fit sgd_ok.cfg --run-dir nan --set fit.epochs=1 >/dev/null 2>&1 || fail "1-epoch sgd run"
before=$(md5sum nan/last.h5)
expect_error 4 "loss became NaN" "$DPTRAIN" fit sgd_ok.cfg --run-dir nan --resume auto --set fit.optimizer.lr=1e6
[ "$before" = "$(md5sum nan/last.h5)" ] && "$DPTRAIN" inspect nan/last.h5 >/dev/null &&
  pass "last.h5 intact after the loss became NaN" || fail "last.h5 changed after NaN"

# 6b. Loss sums read back every 7 steps (GPUs do it every 50, so they queue steps without waiting):
# the same weights and history, exact resume after a signal, and NaN still stops with last.h5 intact.
rb=(--set fit.readback_steps=7)
"$DPTRAIN" fit r.cfg --run-dir rb "${rb[@]}" >rb.log 2>&1 || fail "readback 7: $(tail -2 rb.log)"
same_weights straight/last.h5 rb/last.h5 && diff <(cut -d, -f1-5 straight/history.csv) <(cut -d, -f1-5 rb/history.csv) >/dev/null &&
  pass "read-back every 7 steps: same weights and history as every step" || fail "read-back every 7 steps changes results"
# SIGTERM at step 380 (epoch 2, step 130): it takes effect at the next read-back (step 131).
stop_and_resume rbterm 380 r.cfg "${rb[@]}"
[ "$(stopped_at rbterm.log)" = "2 131" ] || fail "rbterm: stopped at '$(stopped_at rbterm.log)', not at the read-back after step 130 of epoch 2"
same_weights straight/last.h5 rbterm/last.h5 && pass "read-back every 7 steps: SIGTERM + resume bit-identical" ||
  fail "read-back every 7 steps: weights differ after SIGTERM + resume"
before=$(md5sum nan/last.h5)
expect_error 4 "loss became NaN" "$DPTRAIN" fit sgd_ok.cfg --run-dir nan --resume auto --set fit.optimizer.lr=1e6 "${rb[@]}"
[ "$before" = "$(md5sum nan/last.h5)" ] && pass "read-back every 7 steps: last.h5 intact after NaN" ||
  fail "last.h5 changed after NaN (readback 7)"

# 6c. The reader thread (on by default) reads batch i+1 while step i runs; reading on the training
# thread instead must give the same weights and history, also when the data streams in windows
# (shuffle_buffer_mb = 1 over 3 MB) with checkpoints mid-epoch, and a bad row found by the thread
# must stop the run with the same message and exit code.
nt=(--set data.reader_thread=false)
"$DPTRAIN" fit r.cfg --run-dir nothread "${nt[@]}" >nt.log 2>&1 || fail "reader_thread=false: $(tail -2 nt.log)"
same_weights straight/last.h5 nothread/last.h5 && diff <(cut -d, -f1-5 straight/history.csv) <(cut -d, -f1-5 nothread/history.csv) >/dev/null &&
  pass "reader thread off: same weights and history" || fail "reader thread on and off differ"
"$DPTRAIN" synth --rows 60000 --features 10 --seed 5 -o big.h5 >/dev/null || fail "synth big.h5"
sed 's/file = "r.h5";/file = "big.h5"; shuffle_buffer_mb = 1;/; s/epochs = 4;/epochs = 2;/; s/units = 256/units = 32/g' r.cfg >stream.cfg
"$DPTRAIN" fit stream.cfg --run-dir stream_t >st.log 2>&1 || fail "streaming, threaded: $(tail -2 st.log)"
"$DPTRAIN" fit stream.cfg --run-dir stream_n "${nt[@]}" >sn.log 2>&1 || fail "streaming, unthreaded: $(tail -2 sn.log)"
same_weights stream_t/last.h5 stream_n/last.h5 &&
  [ "$(ls stream_t/last-e*.h5 | wc -l)" -eq 2 ] && pass "streaming in windows with mid-epoch checkpoints: thread on and off agree" ||
  fail "streaming: reader thread on and off differ"
# Stopped mid-epoch while streaming: 48,000 training rows of 44 bytes (2.1 MB) in windows of at most
# 1 MB make at least 3 windows, so the last window boundary lies beyond row 24,000. Stopped at step
# 200 of epoch 2 (row 12,800), the resumed run reloads its window mid-way and crosses into the next.
layers=(dense dense_1 dense_2)
stop_and_resume stream_stop 950 stream.cfg
[ "$(stopped_at stream_stop.log)" = "2 200" ] || fail "stream_stop: stopped at '$(stopped_at stream_stop.log)', not epoch 2 step 200"
same_weights stream_t/last.h5 stream_stop/last.h5 && pass "streaming: SIGTERM mid-epoch + resume across a window boundary, bit-identical" ||
  fail "streaming: weights differ after SIGTERM + resume"
# A data file truncated while training streams from it: the run ends with one line and exit 2 at
# the next read, before an epoch trains on the zeros HDF5 would read past the file's new end.
cp big.h5 shrink.h5
sed 's/file = "big.h5";/file = "shrink.h5";/; s/epochs = 2;/epochs = 50;/' stream.cfg >shrink.cfg
"$DPTRAIN" fit shrink.cfg --run-dir shrink >shrink.log 2>shrink.err &
pid=$!
for _ in $(seq 1000); do [ -e shrink/last.h5 ] && break; sleep 0.01; done
truncate -s 0 shrink.h5
wait $pid
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <shrink.err)" -eq 1 ] && grep -q "shrink.h5: the file shrank from [0-9]* to 0 bytes" shrink.err &&
  ! grep -q "loss: 0.0000" shrink.log && pass "a data file truncated during training: exit 2, $(cut -c1-80 shrink.err)" ||
  fail "truncated during training: exit $rc: $(cat shrink.err; grep -c 'loss: 0.0000' shrink.log)"
# A whole chunk zeroed on disk together with its Fletcher32 checksum (zeros checksum to zero) reads
# without an HDF5 error: dptrain says so, naming the file and the rows, once.
if have_h5py; then
  cp big.h5 zeroed.h5
  /usr/bin/python3 - zeroed.h5 <<'PY' || fail "zeroing a chunk of zeroed.h5"
import h5py, sys
spans = []
with h5py.File(sys.argv[1], "r") as f:
    for name in ("train/x", "train/y"):  # the first chunk of each (the validation rows are the last)
        info = f[name].id.get_chunk_info_by_coord((0, 0))
        spans.append((info.byte_offset, info.size))
with open(sys.argv[1], "r+b") as out:
    for offset, size in spans:
        out.seek(offset)
        out.write(bytes(size))
PY
  sed 's/file = "big.h5";/file = "zeroed.h5";/; s/epochs = 2;/epochs = 1;/' stream.cfg >zeroed.cfg
  "$DPTRAIN" fit zeroed.cfg --run-dir zeroed >zeroed.log 2>zeroed.err
  rc=$?
  chunk=$(/usr/bin/python3 -c "import h5py; print(h5py.File('big.h5')['train/x'].chunks[0])")
  if [ $rc -eq 0 ] && [ "$(grep -c 'all zeros' zeroed.err)" -eq 1 ] &&
     grep -q "zeroed.h5: /train rows 0\.\.$((chunk - 1)) (one HDF5 chunk) are all zeros" zeroed.err; then
    pass "a chunk zeroed with its checksum: warned once, $(cut -c1-90 zeroed.err)"
  else
    fail "a chunk zeroed with its checksum: exit $rc, $(head -c 300 zeroed.err)"
  fi
  "$DPTRAIN" fit zeroed.cfg --set 'data.file="big.h5"' --run-dir unzeroed >/dev/null 2>unzeroed.err
  grep -q "all zeros" unzeroed.err && fail "the intact file was warned about: $(cat unzeroed.err)" ||
    pass "the intact file: no warning"
else
  skip_part "python3-h5py zeroes a chunk"
fi
/usr/bin/python3 - <<'PY' || fail "writing the bad-label CSVs"
import random
random.seed(1)
with open("bx.csv", "w") as f:
    f.writelines(",".join("%.4f" % random.random() for _ in range(8)) + "\n" for _ in range(30000))
with open("by.csv", "w") as f:
    f.writelines("%d\n" % (7 if i == 25000 else random.randrange(3)) for i in range(30000))
PY
"$DPTRAIN" import csv --x bx.csv --y by.csv -o badlabel.h5 >/dev/null || fail "import badlabel.h5"
cat >badlabel.cfg <<'CFG'
data = { file = "badlabel.h5"; shuffle = true; shuffle_buffer_mb = 1; };
model = ( { type = "dense"; units = 16; activation = "relu"; }, { type = "dense"; units = 3; activation = "softmax"; } );
fit = { epochs = 1; batch_size = 64; loss = "sparse_categorical_crossentropy"; };
CFG
for t in true false; do
  expect_error 2 "badlabel.h5 /train row 25000: label 7 is out of range" \
    "$DPTRAIN" fit badlabel.cfg --run-dir "badlabel_$t" --set data.reader_thread=$t
done

# 7. Keras' legacy loader view, two Dense layers of the same size
if ! have_h5py; then
  skip_part "python3 with h5py not found: the Keras layout of a checkpoint"
else
  /usr/bin/python3 - straight/last.h5 <<'PY' && pass "Keras layout with two same-size Dense layers" || fail "Keras layout"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
names = [n.decode() for n in f.attrs["layer_names"]]
assert names == ["dense", "dropout", "dense_1", "dense_2"], names
want = {"dense": [(10, 256), (256,)], "dropout": [], "dense_1": [(256, 256), (256,)], "dense_2": [(256, 1), (1,)]}
for n in names:
    wn = [w.decode() for w in f[n].attrs["weight_names"]]
    assert [f[n][w].shape for w in wn] == want[n], (n, wn)
    assert all(f[n][w].dtype == "float32" for w in wn)
    assert wn == ([n + "/kernel:0", n + "/bias:0"] if want[n] else [])
d = f["dptrain"]
assert d.attrs["format"] == b"dptrain-checkpoint" and d.attrs["epoch"] == 4
PY
fi

# Starting over (no --resume) in a run dir with checkpoints: allowed, as in Keras, but said.
"$DPTRAIN" fit r.cfg --run-dir term --set fit.epochs=1 >again.log 2>&1 &&
  grep -q "Starting over: term holds an earlier run.*--resume auto continues it" again.log &&
  pass "a fresh start over an earlier run says so" || fail "fresh start over an earlier run: $(head -2 again.log)"

# 8. One run dir, one fit at a time: a second fit is refused and names the first; a resumed one (a
# requeued job whose predecessor is still ending) waits for it, then continues.
"$DPTRAIN" fit r.cfg --run-dir busy >busy1.log 2>&1 &
holder=$!
for _ in $(seq 200); do grep -q "^pid $holder " busy/.dptrain.lock 2>/dev/null && break; sleep 0.05; done
expect_error 2 "busy is in use by another dptrain fit (pid $holder on " "$DPTRAIN" fit r.cfg --run-dir busy
"$DPTRAIN" fit r.cfg --run-dir busy --resume auto >busy2.log 2>&1
rc=$?
wait $holder
holder_rc=$?
[ $rc -eq 0 ] && [ $holder_rc -eq 0 ] && grep -q "^Waiting up to 300 s for busy, in use by pid $holder on " busy2.log &&
  same_weights straight/last.h5 busy/last.h5 && pass "a resumed fit waits for the run dir's holder, then continues" ||
  fail "waiting for the run dir: exit $rc (holder $holder_rc): $(head -c 300 busy2.log)"
finish
