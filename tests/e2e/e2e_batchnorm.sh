#!/usr/bin/env bash
# BatchNormalization: the Keras-written reference files (weights in Keras' names, order and shapes;
# the penalty of a kernel_regularizer as Keras reports it), synchronized statistics over 1, 2 and 3 ranks (the same
# weights and moving statistics; a last batch smaller than the rank count runs), and per-rank
# statistics that differ and are said to at start-up.
source "$(dirname "$0")/e2e_lib.sh"
KERAS=$DATA/keras
have_h5py || skip_test "python3-h5py reads the Keras files and compares weights"
[ -f "$KERAS/mnist_bn_keras3.16.0_legacy.h5" ] || skip_test "$KERAS/mnist_bn_keras3.16.0_legacy.h5 not found"
[ -f "$DATA/mnist/train-images-idx3-ubyte.gz" ] || skip_test "$DATA/mnist not found"
CMP=$SRC/tests/e2e/compare_weights.py

# 1. Keras' files (their predictions are e2e_keras.sh's): a dptrain checkpoint of mnist_bn laid out
#    like Keras' file, and the penalty Keras reports. The models' job files: tests/e2e/keras_models/.
MODELS=$SRC/tests/e2e/keras_models
for model in mnist_bn mlp_bn; do
  keras_io_h5 "$model" "${model}_io.h5" || fail "$model: a data file from Keras' inputs"
  sed "s|file = \"io.h5\"|file = \"${model}_io.h5\"|" "$MODELS/$model.cfg" >"$model.cfg"
done
# mlp_bn's first Dense has Keras' kernel_regularizer l2(1e-4): evaluating Keras' file on its own
# predictions, the mse is 0 and the loss is the penalty, 1e-4 * sum(kernel^2), as Keras reports it.
loss=$("$DPTRAIN" evaluate mlp_bn.cfg --weights "$KERAS/mlp_bn_keras3.16.0_legacy.h5" --data mlp_bn_io.h5 --json |
       sed -n 's/.*"loss": \([0-9.e+-]*\).*/\1/p')
out=$(/usr/bin/python3 - "$KERAS/mlp_bn_keras3.16.0_legacy.h5" "$loss" <<'PY'
import h5py, numpy as np, sys
f = h5py.File(sys.argv[1], "r")
names = [n.decode() if isinstance(n, bytes) else n for n in f["dense"].attrs["weight_names"]]
kernel = [f["dense"][n][()] for n in names if n.endswith("kernel")][0].astype(np.float64)
want, got = 1e-4 * np.sum(kernel ** 2), float(sys.argv[2])
print("loss %.9g, penalty %.9g" % (got, want))
sys.exit(0 if abs(got - want) < 1e-6 * want + 1e-10 else 1)
PY
) && pass "kernel_regularizer l2: evaluate reports the penalty as Keras does ($out)" || fail "l2 penalty: $out"
"$DPTRAIN" fit mnist_bn.cfg --run-dir layout >layout.log 2>&1 || fail "mnist_bn: a fit for the layout: $(tail -2 layout.log)"
out=$(/usr/bin/python3 - layout/last.h5 "$KERAS/mnist_bn_keras3.16.0_legacy.h5" <<'PY'
import h5py, sys
ours, keras = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def weights(f, layer):
    names = [n.decode() if isinstance(n, bytes) else n for n in f[layer].attrs["weight_names"]]
    return [(n.split("/")[-1].split(":")[0], f[layer][n].shape) for n in names]
for layer in ("batch_normalization", "batch_normalization_1", "conv2d", "dense"):
    a, b = weights(ours, layer), weights(keras, layer)
    assert a == b, (layer, a, b)
print(weights(ours, "batch_normalization"))
PY
) && pass "checkpoint: BatchNormalization's weights named, ordered and shaped as Keras': $out" ||
  fail "checkpoint layout: $out"

# 2. 1, 2 and 3 ranks on an MNIST subset of 960 rows, batch 64, SGD with momentum: the same weights
#    and moving statistics. (Adam would turn the round-off in gradients that are exactly zero in
#    exact arithmetic, those of inputs constant over the batch ahead of a BatchNormalization, into
#    steps of the learning rate, so it compares rank counts poorly.)
if ! command -v mpirun >/dev/null; then
  skip_part "mpirun not found: BatchNormalization over ranks"
  finish
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
"$DPTRAIN" import mnist "$DATA/mnist" -o mnist.h5 >/dev/null || fail "import mnist"
/usr/bin/python3 - <<'PY' || fail "the MNIST subsets"
import h5py
with h5py.File("mnist.h5", "r") as src:
    for rows in (960, 962):
        with h5py.File("subset%d.h5" % rows, "w") as f:
            f["train/x"], f["train/y"] = src["train/x"][:rows], src["train/y"][:rows]
PY
cat >ranks.cfg <<'CFG'
name = "bn_ranks";
data = { file = "subset960.h5"; };
model = (
  { type = "conv2d"; filters = 8; kernel_size = 3; use_bias = false; },
  { type = "batch_normalization"; },
  { type = "activation"; activation = "relu"; },
  { type = "maxpool2d"; pool_size = 2; },
  { type = "flatten"; },
  { type = "dense"; units = 16; use_bias = false; },
  { type = "batch_normalization"; momentum = 0.9; },
  { type = "activation"; activation = "relu"; },
  { type = "dense"; units = 10; activation = "softmax"; }
);
fit = { epochs = 2; batch_size = 64; loss = "sparse_categorical_crossentropy"; metrics = ["accuracy"]; seed = 3;
        threads = 1; optimizer = { name = "sgd"; lr = 0.05; momentum = 0.9; }; };
CFG
for P in 1 2 3; do
  timeout 300 mpirun --bind-to none -np $P "$DPTRAIN" fit ranks.cfg --run-dir "sync$P" >"sync$P.log" 2>&1 ||
    fail "$P ranks: $(tail -3 "sync$P.log")"
done
for P in 2 3; do
  out=$(/usr/bin/python3 "$CMP" sync1/last.h5 "sync$P/last.h5" 1e-5) && pass "synchronized, 1 vs $P ranks: $out" ||
    fail "synchronized, 1 vs $P ranks: $out"
done
# 962 rows: each epoch ends with a batch of 2 rows, so with 3 ranks rank 0 (the one that writes
# checkpoints) has none: it still joins every sum and keeps the moving statistics. A batch of 2
# normalizes each channel to +-1 whatever the input (the input gradient is zero in exact arithmetic,
# round-off here), so the rank counts agree only to about 1e-3 on such data.
for P in 1 3; do
  timeout 300 mpirun --bind-to none -np $P "$DPTRAIN" fit ranks.cfg --set 'data.file="subset962.h5"' \
    --run-dir "tail$P" >"tail$P.log" 2>&1 || fail "962 rows, $P ranks: exit $?: $(tail -3 "tail$P.log")"
done
out=$(/usr/bin/python3 "$CMP" tail1/last.h5 tail3/last.h5 1e-2) &&
  pass "a last batch of 2 rows on 3 ranks: the rank without rows joins (1 vs 3 ranks: $out)" ||
  fail "a last batch of 2 rows on 3 ranks: $out"
for P in 2 3; do
  timeout 300 mpirun --bind-to none -np $P "$DPTRAIN" fit ranks.cfg --run-dir "own$P" \
    --set 'model.[1].synchronized=false' --set 'model.[6].synchronized=false' >"own$P.log" 2>&1 ||
    fail "synchronized = false, $P ranks: $(tail -3 "own$P.log")"
  grep -q "Note: batch_normalization (ranks.cfg:5) has synchronized = false: .* results depend on the number of ranks" \
    "own$P.log" && pass "synchronized = false: start-up says results depend on the rank count" ||
    fail "synchronized = false: no note at start-up"
  if /usr/bin/python3 "$CMP" sync1/last.h5 "own$P/last.h5" 1e-3 >/dev/null; then
    fail "synchronized = false, $P ranks: the same weights as 1 rank (per-rank statistics not used?)"
  else
    pass "synchronized = false, $P ranks: other weights than 1 rank ($(/usr/bin/python3 "$CMP" sync1/last.h5 "own$P/last.h5" 1e-3))"
  fi
done
finish
