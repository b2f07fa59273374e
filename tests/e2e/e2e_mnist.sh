#!/usr/bin/env bash
# MNIST on CPU: import the IDX files (and refuse broken ones), train the tutorial's CNN briefly,
# check its test accuracy, and check that best.h5 has the layout of the Keras reference file.
source "$(dirname "$0")/e2e_lib.sh"
need_data mnist/train-images-idx3-ubyte.gz

"$DPTRAIN" import mnist "$DATA/mnist" -o mnist.h5 >import.log || { fail "import: $(cat import.log)"; finish; }
grep -q "/train 60000 images of 28x28" import.log && grep -q "/test 10000 images" import.log && pass "import mnist" ||
  fail "import mnist: $(cat import.log)"
mkdir bad
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$DATA/mnist/$f.gz" bad/
done
gzip -dc "$DATA/mnist/t10k-images-idx3-ubyte.gz" | head -c 100000 | gzip >bad/t10k-images-idx3-ubyte.gz
expect_error 2 "bad/t10k-images-idx3-ubyte.gz: truncated or damaged" "$DPTRAIN" import mnist bad -o b.h5
cp "$DATA/mnist/train-labels-idx1-ubyte.gz" bad/t10k-images-idx3-ubyte.gz
expect_error 2 "bad/t10k-images-idx3-ubyte.gz: not an MNIST image file" "$DPTRAIN" import mnist bad -o b.h5
[ ! -e b.h5 ] && pass "failed imports leave no file" || fail "a failed import left b.h5"

# The tutorial's job for one whole epoch (1875 steps of batch 32, 20-40 s on 2 cores). The issue's
# 0.985 after one epoch is where this model lands give or take the seed (README: 16 seeds, mean
# 0.9840, sd 0.0022, from 0.9800 to 0.9879; PyTorch the same). Another CPU's BLAS rounds
# differently, which acts like another seed, so the bound sits 4 sd under the mean: a broken
# layer lands far below it. Seed 1 with 2 threads here: 0.9832.
"$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" --set fit.epochs=1 --set fit.threads=2 --run-dir run >fit.log 2>&1 ||
  { fail "fit: $(tail -3 fit.log)"; finish; }
acc=$("$DPTRAIN" evaluate "$SRC/jobs/mnist_cnn.cfg" --weights run/last.h5 --json | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p')
holds "$acc" 'v >= 0.975' && pass "1 epoch ($(grep -o '[0-9.]* s, [0-9]* samples/s' fit.log)): test accuracy $acc >= 0.975" ||
  fail "test accuracy $acc after 1 epoch"

# Resuming checks every setting of every layer: a changed conv2d activation, strides or padding, a
# changed max pooling size or a changed dense activation is refused, naming the layer and setting.
job=$SRC/jobs/mnist_cnn.cfg
line() { grep -n "$1" "$job" | head -1 | cut -d: -f1; }
few=(--set fit.epochs=1 --set fit.steps_per_epoch=3 --set fit.threads=1)
"$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed >changed.log 2>&1 || fail "3 steps: $(tail -2 changed.log)"
conv=$(line 'filters = 32') pool=$(line 'type = "maxpool2d"') dense=$(line 'units = 128')
expect_error 2 "layer 1 ($job:$conv) has activation relu in the checkpoint but tanh in the job" \
  "$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed --resume auto --set 'model.[0].activation="tanh"'
expect_error 2 "layer 1 ($job:$conv) has strides [1, 1] in the checkpoint but [2, 2] in the job" \
  "$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed --resume auto --set 'model.[0].strides=2'
expect_error 2 "layer 1 ($job:$conv) has padding valid in the checkpoint but same in the job" \
  "$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed --resume auto --set 'model.[0].padding="same"'
expect_error 2 "layer 2 ($job:$pool) has pool_size [2, 2] in the checkpoint but [3, 3] in the job" \
  "$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed --resume auto --set 'model.[1].pool_size=3'
expect_error 2 "layer 6 ($job:$dense) has activation relu in the checkpoint but tanh in the job" \
  "$DPTRAIN" fit "$job" "${few[@]}" --run-dir changed --resume auto --set 'model.[5].activation="tanh"'

"$DPTRAIN" bench "$SRC/jobs/mnist_cnn.cfg" --steps 3 --warmup-seconds 0 --profile --set fit.threads=1 >profile.txt 2>&1 ||
  fail "bench --profile: $(tail -2 profile.txt)"
check_profile profile.txt conv2d max_pooling2d conv2d_1 max_pooling2d_1 flatten dense dense_1

# Same result with 1 and 2 ranks (within rounding), as for Dense models: 40 steps of batch 32.
if ! have_h5py; then
  skip_part "python3 with h5py not found: 1 vs 2 ranks and the Keras layout"
else
  short=(--set fit.epochs=1 --set fit.steps_per_epoch=40 --set fit.threads=1)
  "$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" "${short[@]}" --run-dir r1 >r1.log 2>&1 || fail "1 rank: $(tail -2 r1.log)"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --bind-to none -np 2 \
    "$DPTRAIN" fit "$SRC/jobs/mnist_cnn.cfg" "${short[@]}" --run-dir r2 >r2.log 2>&1 || fail "2 ranks: $(tail -2 r2.log)"
  out=$(/usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" r1/last.h5 r2/last.h5 1e-4) &&
    pass "CNN, 1 vs 2 ranks after 40 steps: $out" || fail "CNN 1 vs 2 ranks: $out"
fi

if [ ! -f "$DATA/keras/mnist_cnn_keras3.16.0_legacy.h5" ]; then
  skip_part "$DATA/keras/mnist_cnn_keras3.16.0_legacy.h5 not found: the Keras layout comparison"
elif have_h5py; then
  /usr/bin/python3 - run/best.h5 "$DATA/keras/mnist_cnn_keras3.16.0_legacy.h5" <<'PY' && pass "best.h5 matches the Keras reference layout" || fail "Keras layout"
import sys, h5py
ours, ref = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def layers(f):
    out = []
    for n in [x.decode() if hasattr(x, "decode") else x for x in f.attrs["layer_names"]]:
        wn = [w.decode() if hasattr(w, "decode") else w for w in f[n].attrs["weight_names"]]
        if wn:
            out.append([f[n][w].shape for w in wn])
    return out
a, b = layers(ours), layers(ref)
print("ours:", a)
assert a == b, (a, b)
names = [x.decode() for x in ours.attrs["layer_names"]]
assert names == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense", "dense_1"], names
PY
fi

# jobs/mnist_bn.cfg (BatchNormalization, global average pooling, AdamW with a cosine schedule) for
# one epoch, its schedule compressed to that epoch: the mean test accuracy of 3 seeds is at least
# 0.985 (the plain mnist_cnn gets about 0.984; README: mnist_bn about 0.989 on this machine).
bn=(--set fit.epochs=1 --set fit.optimizer.learning_rate.decay_steps=838 --set fit.threads=2)
accs=()
for seed in 1 2 3; do
  if "$DPTRAIN" fit "$SRC/jobs/mnist_bn.cfg" "${bn[@]}" --set fit.seed=$seed --run-dir "bn$seed" >"bn$seed.log" 2>&1; then
    accs+=("$("$DPTRAIN" evaluate "$SRC/jobs/mnist_bn.cfg" --weights "bn$seed/last.h5" --json |
               sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p')")
  else
    fail "mnist_bn seed $seed: $(tail -3 "bn$seed.log")"
  fi
done
mean=$(printf '%s\n' "${accs[@]}" | awk 'NF { s += $1; n++ } END { if (n == 3) printf "%.4f", s / n }')
holds "$mean" 'v >= 0.985' && pass "mnist_bn, 1 epoch: mean test accuracy of 3 seeds $mean >= 0.985 (${accs[*]})" ||
  fail "mnist_bn, 1 epoch: mean test accuracy '$mean' (${accs[*]})"
finish
