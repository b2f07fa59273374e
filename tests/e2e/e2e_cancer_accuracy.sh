#!/usr/bin/env bash
# The breast-cancer tutorial end to end: import with the tutorial's split, train the recipe over
# 5 seeds (mean test accuracy >= 0.92) and the tuned job (mean >= 0.96), then evaluate, predict
# and inspect, and read best.h5 the way Keras' legacy loader does.
source "$(dirname "$0")/e2e_lib.sh"
need_data cancer/cancer_data.csv

"$DPTRAIN" import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" \
  -o cancer.h5 --test-split 0.3 --seed 7 || { fail "import"; finish; }

mean_accuracy() { # job seeds...
  local job=$1 sum=0 n=0 acc
  shift
  for seed in "$@"; do
    "$DPTRAIN" fit "$SRC/jobs/$job.cfg" --set fit.seed="$seed" --run-dir "runs/$job-$seed" >"fit-$job-$seed.log" 2>&1 \
      || { fail "fit $job seed $seed: $(tail -2 "fit-$job-$seed.log")"; continue; }
    acc=$("$DPTRAIN" evaluate "$SRC/jobs/$job.cfg" --weights "runs/$job-$seed/best.h5" --json |
          sed -n 's/.*"accuracy": \([0-9.e-]*\).*/\1/p')
    is_number "$acc" || { fail "evaluate $job seed $seed: no accuracy ('$acc')"; continue; }
    echo "$job seed $seed: test accuracy $acc ($(grep -o '"epochs_run": [0-9]*' "runs/$job-$seed/summary.json"))" >&2
    sum=$(awk -v a="$sum" -v b="$acc" 'BEGIN { print a + b }')
    n=$((n + 1))
  done
  # a mean over fewer seeds than asked is no mean: the failed ones were counted above, and the
  # value says so (it is not a number)
  if [ "$n" -eq $# ]; then awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.4f", s / n }'
  else echo "only $n of $# seeds"; fi
}

m=$(mean_accuracy cancer_mlp 1 2 3 4 5)
holds "$m" 'v >= 0.92' && pass "cancer_mlp mean test accuracy $m >= 0.92" ||
  fail "cancer_mlp mean test accuracy: $m, not >= 0.92"
m=$(mean_accuracy cancer_mlp_tuned 1 2 3 4 5)
holds "$m" 'v >= 0.96' && pass "cancer_mlp_tuned mean test accuracy $m >= 0.96" ||
  fail "cancer_mlp_tuned mean test accuracy: $m, not >= 0.96"

run=runs/cancer_mlp-1
for f in history.csv summary.json best.h5 last.h5; do
  [ -s "$run/$f" ] && pass "$run/$f written" || fail "$run/$f missing"
done
head -1 "$run/history.csv" | grep -q '^epoch,loss,accuracy,val_loss,val_accuracy,seconds,lr$' &&
  pass "history.csv header" || fail "history.csv header: $(head -1 "$run/history.csv")"
"$DPTRAIN" evaluate "$SRC/jobs/cancer_mlp.cfg" --weights "$run/best.h5" --json | grep -q '"confusion_matrix": \[\[' &&
  pass "evaluate --json has a confusion matrix" || fail "evaluate --json"
"$DPTRAIN" predict "$SRC/jobs/cancer_mlp.cfg" --weights "$run/best.h5" --data cancer.h5 -o pred.csv >/dev/null &&
  [ "$(wc -l <pred.csv)" -eq 171 ] && pass "predict wrote 171 rows" || fail "predict csv"
"$DPTRAIN" predict "$SRC/jobs/cancer_mlp.cfg" --weights "$run/best.h5" --data "$DATA/cancer/cancer_data.csv" -o all.h5 >/dev/null &&
  pass "predict from CSV to HDF5" || fail "predict from CSV"
# A checkpoint alone carries its job: the same predictions (to standard output with -o -) and the
# same evaluation as with the job file; a job file without --weights, or --set without a job file,
# is one line and exit 2.
"$DPTRAIN" predict "$run/best.h5" --data cancer.h5 -o - >alone.csv 2>alone.err && cmp -s alone.csv pred.csv &&
  grep -q "standard output: 171 predictions" alone.err && pass "predict CHECKPOINT -o -: the same rows as with the job" ||
  fail "predict CHECKPOINT -o -: $(head -c 200 alone.err)"
[ "$("$DPTRAIN" evaluate "$run/best.h5" --json)" = "$("$DPTRAIN" evaluate "$SRC/jobs/cancer_mlp.cfg" --weights "$run/best.h5" --json)" ] &&
  pass "evaluate CHECKPOINT: the same report as with the job" || fail "evaluate CHECKPOINT differs"
expect_error 2 "predict: needs JOB and --weights W, or a checkpoint (best.h5, last.h5) or .keras file alone" \
  "$DPTRAIN" predict "$SRC/jobs/cancer_mlp.cfg" --data cancer.h5 -o p2.csv
expect_error 2 "evaluate: --set needs the job file" "$DPTRAIN" evaluate "$run/best.h5" --set fit.epochs=2
cut -d, -f1-5 "$DATA/cancer/cancer_data.csv" >narrow.csv
expect_error 2 "narrow.csv has 5 features per row, but the model in $run/best.h5 takes 30" \
  "$DPTRAIN" predict "$run/best.h5" --data narrow.csv -o narrow-pred.csv
"$DPTRAIN" inspect "$run/best.h5" | grep -q "dropout_1 *(no weights)" && pass "inspect shows weightless layers" ||
  fail "inspect best.h5"

if have_h5py; then
  /usr/bin/python3 - "$run/best.h5" <<'PY' && pass "best.h5 reads like Keras' legacy loader" || fail "Keras layout"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
names = [n.decode() for n in f.attrs["layer_names"]]
assert names == ["dense", "dropout", "dense_1", "dropout_1", "dense_2"], names
f.attrs["keras_version"].decode(); f.attrs["backend"].decode()
shapes = []
for n in names:
    wn = [w.decode("utf8") if hasattr(w, "decode") else w for w in f[n].attrs["weight_names"]]
    shapes += [(w, f[n][w].shape, f[n][w].dtype.name) for w in wn]
assert shapes == [("dense/kernel:0", (30, 30), "float32"), ("dense/bias:0", (30,), "float32"),
                  ("dense_1/kernel:0", (30, 60), "float32"), ("dense_1/bias:0", (60,), "float32"),
                  ("dense_2/kernel:0", (60, 2), "float32"), ("dense_2/bias:0", (2,), "float32")], shapes
assert "dptrain" in f and "job" in f["dptrain"].attrs
PY
else
  skip_part "python3 with h5py not found: the Keras layout read-back"
fi
# Gradient clipping by norm: with clipnorm (or global_clipnorm) of 1e-12 every step moves the
# weights by at most about 1e-13 (the recipe's sgd, lr 0.01, momentum 0.9), so they end where a
# rate of 1e-300 (0 in float) leaves them, the initial weights; without clipping they move.
clipjob=(--set fit.epochs=2 --set fit.early_stopping.patience=100)
"$DPTRAIN" fit "$SRC/jobs/cancer_mlp.cfg" "${clipjob[@]}" --set fit.optimizer.lr=1e-300 --run-dir still >/dev/null 2>&1 ||
  fail "fit with lr 1e-300"
for clip in clipnorm global_clipnorm; do
  sed "s|optimizer = {|optimizer = { $clip = 1e-12;|" "$SRC/jobs/cancer_mlp.cfg" >"$clip.cfg"
  "$DPTRAIN" fit "$clip.cfg" "${clipjob[@]}" --run-dir "$clip" >"$clip.log" 2>&1 ||
    fail "fit with $clip: $(tail -2 "$clip.log")"
  if have_h5py; then
    # absolute: the biases start at 0, where a relative difference means nothing
    out=$(/usr/bin/python3 - still/last.h5 "$clip/last.h5" <<'PY'
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
diff = max(np.abs(a[l][l + "/" + w][()] - b[l][l + "/" + w][()]).max()
           for l in ("dense", "dense_1", "dense_2") for w in ("kernel:0", "bias:0"))
print("max absolute difference %.2g" % diff)
sys.exit(0 if diff < 1e-9 else 1)
PY
    ) && pass "$clip = 1e-12: the weights stay at their start ($out)" || fail "$clip = 1e-12: $out"
  fi
done
if have_h5py; then
  "$DPTRAIN" fit "$SRC/jobs/cancer_mlp.cfg" "${clipjob[@]}" --run-dir moved >/dev/null 2>&1 || fail "fit without clipping"
  /usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" still/last.h5 moved/last.h5 1e-3 >/dev/null &&
    fail "without clipping the weights did not move" || pass "without clipping the weights move"
fi
finish
