#!/usr/bin/env bash
# Metrics against scikit-learn on the same predictions (within 1e-6): precision and recall (Keras'
# thresholded, element-wise definitions; a softmax model and a single sigmoid output),
# top_k_categorical_accuracy (k = 3, 10 classes), auc (exact ROC AUC: roc_auc_score; a sigmoid and a
# two-class softmax, and training resumed mid-epoch), as the last epoch's val_ value in history.csv and
# in evaluate --json; evaluate's classification report against classification_report. Also
# data.validation_file (Keras' validation_data) and data.normalize_from.
source "$(dirname "$0")/e2e_lib.sh"
/usr/bin/python3 -c "import sklearn, h5py" 2>/dev/null || skip_test "python3-sklearn computes the reference values"
[ -f "$DATA/cancer/cancer_data.csv" ] || skip_test "$DATA/cancer/cancer_data.csv not found"
[ -f "$DATA/keras/mnist_cnn_io.h5" ] || skip_test "$DATA/keras/mnist_cnn_io.h5 not found"

"$DPTRAIN" import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" -o cancer.h5 \
  --test-split 0.3 --seed 7 >/dev/null || fail "import csv"
keras_io_h5 mnist_cnn digits.h5
# 10 classes: labels from Keras' predictions on 50 samples; rows 0-29 train, all 50 validate
cat >softmax.cfg <<'EOF'
name = "softmax";
data = { file = "cancer.h5"; normalize = "standard"; validation_file = "cancer.h5"; validation_group = "test"; };
model = ( { type = "dense"; units = 16; activation = "relu"; }, { type = "dense"; units = 2; activation = "softmax"; } );
fit = { seed = 3; epochs = 4; batch_size = 64; loss = "sparse_categorical_crossentropy"; metrics = ["precision"];
        optimizer = { name = "adam"; learning_rate = 0.01; }; };
EOF
# (a slow start, so that recall is far from 0 and 1)
sed 's/units = 2; activation = "softmax"/units = 1; activation = "sigmoid"/; s/sparse_categorical_crossentropy/binary_crossentropy/; s/"precision"/"recall"/; s/name = "softmax"/name = "sigmoid"/; s/epochs = 4;/epochs = 6;/; s/learning_rate = 0.01;/learning_rate = 0.001;/' \
  softmax.cfg >sigmoid.cfg
sed 's/"recall"/"auc"/; s/name = "sigmoid"/name = "auc1"/' sigmoid.cfg >auc1.cfg
sed 's/"precision"/"auc"/; s/name = "softmax"/name = "auc2"/; s/learning_rate = 0.01;/learning_rate = 0.001;/' softmax.cfg >auc2.cfg
cat >topk.cfg <<'EOF'
name = "topk";
data = { file = "digits.h5"; validation_file = "digits.h5"; validation_group = "test"; };
model = ( { type = "flatten"; }, { type = "dense"; units = 10; activation = "softmax"; } );
fit = { seed = 3; epochs = 3; batch_size = 16; loss = "sparse_categorical_crossentropy";
        metrics = ({ name = "top_k_categorical_accuracy"; k = 3; }); optimizer = "adam"; };
EOF

# reference JOB DATA: prints "<metric> <sklearn value> <history val_ value> <evaluate value>"
for job in softmax sigmoid topk auc1 auc2; do
  data=cancer.h5
  [ "$job" = topk ] && data=digits.h5
  ("$DPTRAIN" fit $job.cfg --run-dir $job >$job.log 2>&1 &&
   "$DPTRAIN" predict $job/last.h5 --data $data -o $job-pred.h5 >/dev/null &&
   "$DPTRAIN" evaluate $job/last.h5 --data $data --json >$job-eval.json) || { fail "$job: $(tail -2 $job.log)"; continue; }
  grep -q "for validation ($data /test)" $job.log && pass "$job: data.validation_file's /test rows validate" ||
    fail "$job: validation rows: $(grep '^Data' $job.log)"
  out=$(/usr/bin/python3 - $job $data <<'PY'
import csv, h5py, json, numpy as np, sys
from sklearn import metrics
job, data = sys.argv[1:3]
p = h5py.File(job + "-pred.h5", "r")["predictions"][()].astype(np.float64)
y = h5py.File(data, "r")["test/y"][()]
if job == "softmax":
    name, want = "precision", metrics.precision_score(np.eye(2)[y].ravel(), (p > 0.5).ravel())
elif job == "sigmoid":
    name, want = "recall", metrics.recall_score(y, p[:, 0] > 0.5)
elif job == "topk":
    name, want = "top_k_categorical_accuracy", metrics.top_k_accuracy_score(y, p, k=3, labels=range(10))
else:
    name, want = "auc", metrics.roc_auc_score(y, p[:, -1])
rows = list(csv.DictReader(open(job + "/history.csv")))
hist = float(rows[-1]["val_" + name])
ev = json.load(open(job + "-eval.json"))
got = ev[name]
# the classification report of the predicted classes
pred = (p[:, 0] > 0.5).astype(int) if p.shape[1] == 1 else p.argmax(1)
labels = list(range(max(2, p.shape[1])))
ref = metrics.classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
ours = ev["classification_report"]
worst = 0.0
for key, v in ref.items():
    if key == "micro avg":  # scikit-learn's name for accuracy when some classes never occur
        for k2 in ("precision", "recall", "f1-score"):
            worst = max(worst, abs(v[k2] - ours["accuracy"]))
    elif isinstance(v, dict):
        for k2 in ("precision", "recall", "f1-score", "support"):
            worst = max(worst, abs(v[k2] - ours[str(key)][k2]))
    else:
        worst = max(worst, abs(v - ours[key]))
ok = abs(hist - want) < 1e-6 and abs(got - want) < 1e-6 and worst < 1e-6
print(f"{name}: scikit-learn {want:.6f}, history val_{name} {hist:.6f}, evaluate {got:.6f}; "
      f"classification report within {worst:.1g}")
sys.exit(0 if ok else 1)
PY
  ) && pass "$job: $out" || fail "$job: $out"
done
"$DPTRAIN" evaluate softmax/last.h5 --data cancer.h5 | grep -q "weighted avg" && pass "evaluate prints the classification report" ||
  fail "evaluate's report"
# auc's scores survive a stop within an epoch: a run stopped after step 10 (7 an epoch: in epoch 2)
# and resumed writes the history, training auc included, of the run that went straight through
DPTRAIN_TEST_SIGTERM_AT_STEP=10 "$DPTRAIN" fit auc1.cfg --run-dir auc1-stopped >stopped.log 2>&1
rc=$?
"$DPTRAIN" fit auc1.cfg --run-dir auc1-stopped --resume auto >resumed.log 2>&1 &&
  [ "$rc" -eq 3 ] && grep -q "^Resumed from .*: epoch 2 continues at step 4" resumed.log &&
  diff <(cut -d, -f1-5 auc1/history.csv) <(cut -d, -f1-5 auc1-stopped/history.csv) >/dev/null &&
  pass "auc: stopped in epoch 2 (exit $rc) and resumed, the same history as straight through" ||
  fail "auc resume: exit $rc, $(grep Resumed resumed.log); $(diff <(cut -d, -f1-5 auc1/history.csv) <(cut -d, -f1-5 auc1-stopped/history.csv) | head -4)"
# auc over 2 ranks: each computes the scores of its half of every batch; they are gathered
if command -v mpirun >/dev/null; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --bind-to none -np 2 \
    "$DPTRAIN" fit auc1.cfg --run-dir auc1-two >two.log 2>&1 &&
    "$DPTRAIN" predict auc1-two/last.h5 --data cancer.h5 -o two-pred.h5 >/dev/null &&
    out=$(/usr/bin/python3 -c "
import csv, h5py
from sklearn.metrics import roc_auc_score
p = h5py.File('two-pred.h5', 'r')['predictions'][()][:, 0]; y = h5py.File('cancer.h5', 'r')['test/y'][()]
want, got = roc_auc_score(y, p), float(list(csv.DictReader(open('auc1-two/history.csv')))[-1]['val_auc'])
print('2 ranks: val_auc %.6f, scikit-learn %.6f' % (got, want)); assert abs(got - want) < 1e-6") &&
    pass "auc gathered from 2 ranks: $out" || fail "auc over 2 ranks: $out $(tail -2 two.log)"
fi
sed 's/units = 16; activation = "relu"; }, { type = "dense"; units = 2;/units = 16; activation = "relu"; }, { type = "dense"; units = 3;/; s/"precision"/"auc"/' \
  softmax.cfg >auc3.cfg
expect_error 2 "metric auc needs a binary problem: one sigmoid output or two softmax outputs (this model has 3)" \
  "$DPTRAIN" fit auc3.cfg --run-dir bad4

# normalize_from: the training rows (default: the ones fit trains on, after validation_split's
# cut) or all of /train (the tutorial's StandardScaler, fitted before the split)
for from in training all; do
  sed 's/ validation_file = "cancer.h5"; validation_group = "test";/ validation_split = 0.25; normalize_from = "'$from'";/' softmax.cfg >norm-$from.cfg
  "$DPTRAIN" fit norm-$from.cfg --set fit.epochs=1 --run-dir norm-$from >/dev/null 2>&1 &&
    out=$(/usr/bin/python3 - $from <<'PY'
import h5py, numpy as np, sys
x = h5py.File("cancer.h5", "r")["train/x"][()].astype(np.float64)
n = len(x) if sys.argv[1] == "all" else int(np.floor(len(x) * 0.75))
g = h5py.File(f"norm-{sys.argv[1]}/last.h5", "r")["dptrain/normalization"]
err = max(np.abs(g["mean"][()] - x[:n].mean(0)).max(), np.abs(g["std"][()] - x[:n].std(0)).max() / x[:n].std(0).max())
print(f"statistics of the first {n} of {len(x)} rows (within {err:.1g})")
sys.exit(0 if err < 1e-9 else 1)
PY
    ) && pass "normalize_from = \"$from\": $out" || fail "normalize_from $from: $out"
done

# Learning curves: fit draws RUN_DIR/curves.png; report history overlays runs, with a learning-rate
# panel when a rate changed (a third panel: a wider picture); without gnuplot, fit warns and
# succeeds, and report history says what is missing.
png_size() { /usr/bin/python3 -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(24)
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
print('%dx%d' % struct.unpack('>II', b[16:24]))" "$1"; }
if command -v gnuplot >/dev/null; then
  size=$(png_size softmax/curves.png) && pass "fit drew softmax/curves.png ($size)" || fail "fit's curves.png: $size"
  sed 's/learning_rate = 0.01;/learning_rate = { name = "cosine_decay"; initial_learning_rate = 0.01; decay_steps = 20; };/' \
    softmax.cfg >cosine.cfg
  "$DPTRAIN" fit cosine.cfg --run-dir cosine >/dev/null 2>&1 &&
    out=$("$DPTRAIN" report history softmax cosine -o two.png) && size=$(png_size two.png) && [ "${size%x*}" -gt 1200 ] &&
    pass "report history of two runs, one with a schedule: $out ($size, three panels)" || fail "report history: $out $size"
  size=$(png_size topk/curves.png) && [ "${size%x*}" -lt 1200 ] && pass "a constant rate: two panels ($size)" ||
    fail "topk curves: $size"
else
  echo "note: gnuplot missing; the pictures are not checked"
fi
mkdir -p nognuplot && ln -sf "$(command -v mpirun 2>/dev/null || echo /bin/true)" nognuplot/mpirun
PATH=$PWD/nognuplot "$DPTRAIN" fit softmax.cfg --set fit.epochs=1 --run-dir plain >plain.log 2>&1 &&
  grep -q "curves.png not drawn: gnuplot failed or is missing" plain.log && [ ! -e plain/curves.png ] &&
  pass "fit without gnuplot: a warning, no curves.png, success" || fail "fit without gnuplot: $(tail -2 plain.log)"
expect_error 1 "gnuplot failed or is missing" env PATH=$PWD/nognuplot "$DPTRAIN" report history softmax -o x.png
expect_error 2 "nothere/history.csv: cannot open" "$DPTRAIN" report history softmax nothere -o y.png
[ ! -e x.png ] && [ ! -e y.png ] && pass "refused plots wrote nothing" || fail "refused plots left files"

expect_error 2 "give validation_split or validation_file, not both" \
  "$DPTRAIN" fit softmax.cfg --set data.validation_split=0.2 --run-dir bad1
expect_error 2 "digits.h5: /test has samples (None, 28, 28, 1)" \
  "$DPTRAIN" fit softmax.cfg --set 'data.validation_file="digits.h5"' --run-dir bad2
sed 's/name = "top_k_categorical_accuracy"; k = 3;/name = "recall"; k = 3;/' topk.cfg >recall-k.cfg
expect_error 2 "recall-k.cfg:5: fit.metrics.[0].k: only top_k_categorical_accuracy takes k" "$DPTRAIN" fit recall-k.cfg --run-dir bad3
finish
