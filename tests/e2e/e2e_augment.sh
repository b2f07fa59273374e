#!/usr/bin/env bash
# Augmentation (Keras' RandomFlip, RandomTranslation, RandomZoom, RandomRotation as leading model
# entries): exact geometry where it is exact (a flip mirrors or keeps each image; a quarter turn is
# numpy's rot90; a shift of a quarter height is a roll with the fill); draws keyed by epoch and
# sample, so 1 and 2 ranks train to the same weights, a resumed run to the same weights bit for bit,
# and other epochs see other images; validation rows are never augmented; bad placement refused.
source "$(dirname "$0")/e2e_lib.sh"
CMP=$SRC/tests/e2e/compare_weights.py
/usr/bin/python3 -c "import numpy, h5py" 2>/dev/null || skip_test "python3-numpy and python3-h5py write and check the images"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

/usr/bin/python3 - <<'PY' || fail "writing the images"
import numpy as np
rng = np.random.default_rng(9)
x = rng.random((96, 12, 12, 2)).astype(np.float32)
np.save("x.npy", x)
np.save("y.npy", (x[:, :6].mean((1, 2, 3)) > x[:, 6:].mean((1, 2, 3))).astype(np.int32))
PY
"$DPTRAIN" import npy --x x.npy --y y.npy -o img.h5 --test-split 0.25 --seed 1 >/dev/null || fail "import npy"

job() { # NAME ENTRIES...: a job whose model starts with the augmentation entries
  local name=$1
  shift
  { echo "name = \"$name\";"
    echo 'data = { file = "img.h5"; validation_split = 0.25; };'
    echo "model = ("
    for e in "$@"; do echo "  $e,"; done
    echo '  { type = "conv2d"; filters = 4; kernel_size = 3; activation = "relu"; },'
    echo '  { type = "flatten"; }, { type = "dense"; units = 2; activation = "softmax"; }'
    echo ");"
    echo 'fit = { epochs = 3; batch_size = 8; loss = "sparse_categorical_crossentropy"; metrics = ["accuracy"]; seed = 5; threads = 1; };'
  } >"$name.cfg"
}
# check NAME EXPR: every augmented image (a) of the original (o) satisfies EXPR (NumPy, per image)
check() {
  "$DPTRAIN" augment "$1.cfg" -o "$1.h5" --rows 24 >/dev/null &&
    /usr/bin/python3 - "$1.h5" "$2" <<'PY'
import h5py, numpy as np, sys
f = h5py.File(sys.argv[1], "r")
O, A = f["original"][()], f["augmented"][()]
ok = [eval(sys.argv[2], {"np": np, "o": o, "a": a}) for o, a in zip(O, A)]
changed = sum(not np.array_equal(o, a) for o, a in zip(O, A))
print(f"{sum(ok)} of {len(ok)} images as expected, {changed} changed")
sys.exit(0 if all(ok) and 0 < changed else 1)
PY
}
job flip '{ type = "random_flip"; mode = "horizontal"; }'
out=$(check flip "np.array_equal(a, o) or np.array_equal(a, o[:, ::-1])") && pass "random_flip horizontal: mirrored or kept ($out)" ||
  fail "flip: $out"
job turn '{ type = "RandomRotation"; factor = [0.25, 0.25]; interpolation = "nearest"; }'
out=$(check turn "np.allclose(a, np.rot90(o))") && pass "random_rotation by a quarter turn: numpy's rot90 ($out)" || fail "rotation: $out"
job shift '{ type = "random_translation"; height_factor = [0.25, 0.25]; width_factor = [0.0, 0.0]; fill_mode = "constant"; fill_value = 0.5; }'
out=$(check shift "np.allclose(a[3:], o[:-3]) and np.allclose(a[:3], 0.5)") &&
  pass "random_translation of a quarter height: 3 rows down, the fill above ($out)" || fail "translation: $out"
job zoom '{ type = "random_zoom"; height_factor = [-0.5, -0.5]; interpolation = "nearest"; }'
# zoom in by 2 about the center (5.5): output x samples the input at 5.5 + (x - 5.5) / 2
out=$(check zoom "np.allclose(a, o[np.floor(5.5 + (np.arange(12) - 5.5) * 0.5 + 0.5).astype(int)][:, np.floor(5.5 + (np.arange(12) - 5.5) * 0.5 + 0.5).astype(int)])") &&
  pass "random_zoom of -0.5: zoomed in by 2 about the center ($out)" || fail "zoom: $out"

# 1 and 2 ranks, and a resumed run, with all four entries
job all '{ type = "random_flip"; }' '{ type = "random_rotation"; factor = 0.1; }' \
  '{ type = "random_zoom"; height_factor = 0.2; width_factor = [-0.1, 0.3]; fill_mode = "wrap"; }' \
  '{ type = "random_translation"; height_factor = 0.1; width_factor = 0.2; fill_mode = "reflect"; }'
"$DPTRAIN" fit all.cfg --run-dir one >one.log 2>&1 || fail "fit: $(tail -2 one.log)"
grep -q "^Augmentation (training rows only): random_flip, random_rotation, random_zoom, random_translation" one.log &&
  pass "fit says which augmentation runs" || fail "fit's augmentation line: $(grep -i augment one.log)"
if command -v mpirun >/dev/null; then
  mpirun --oversubscribe --bind-to none -np 2 "$DPTRAIN" fit all.cfg --run-dir two >two.log 2>&1 &&
    out=$(/usr/bin/python3 "$CMP" one/last.h5 two/last.h5 1e-5) && pass "1 vs 2 ranks: $out" || fail "1 vs 2 ranks: $out $(tail -2 two.log)"
fi
"$DPTRAIN" fit all.cfg --set fit.epochs=1 --run-dir resumed >/dev/null 2>&1 &&
  "$DPTRAIN" fit all.cfg --run-dir resumed --resume auto >/dev/null 2>&1 &&
  out=$(/usr/bin/python3 "$CMP" one/last.h5 resumed/last.h5 0) && pass "stopped after epoch 1 and resumed: $out" ||
  fail "resume: $out"
DPTRAIN_TEST_SIGTERM_AT_STEP=13 "$DPTRAIN" fit all.cfg --run-dir midway >midway.log 2>&1
rc=$?
"$DPTRAIN" fit all.cfg --run-dir midway --resume auto >midway2.log 2>&1 && [ "$rc" -eq 3 ] &&
  grep -q "^Resumed from .*: epoch 2 continues at step 7" midway2.log &&
  out=$(/usr/bin/python3 "$CMP" one/last.h5 midway/last.h5 0) && pass "stopped within epoch 2 and resumed: $out" ||
  fail "mid-epoch resume: exit $rc, $(grep Resumed midway2.log) $out"
"$DPTRAIN" augment all.cfg -o e1.h5 --epoch 1 >/dev/null && "$DPTRAIN" augment all.cfg -o e2.h5 --epoch 2 >/dev/null &&
  /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('e1.h5', 'r')['augmented'][()], h5py.File('e2.h5', 'r')['augmented'][()]
assert not np.allclose(a, b)" && pass "epoch 2 sees other images than epoch 1" || fail "epochs augment alike"
# validation rows are not augmented: the last epoch's val_loss equals evaluate on those rows
"$DPTRAIN" fit all.cfg --set data.validation_split=0 --set 'data.validation_file="img.h5"' --set 'data.validation_group="test"' \
  --run-dir val >/dev/null 2>&1 && ev=$("$DPTRAIN" evaluate val/last.h5 --data img.h5 --json) &&
  /usr/bin/python3 -c "
import csv, json, sys
last = list(csv.DictReader(open('val/history.csv')))[-1]
ev = json.loads(sys.argv[1])
assert abs(float(last['val_loss']) - ev['loss']) < 1e-6, (last['val_loss'], ev['loss'])" "$ev" &&
  pass "val_loss of the last epoch = evaluate of the same rows" || fail "val_loss vs evaluate"

# Keras' random layers come in by import keras as these entries
if [ -f "$DATA/keras/mnist_bn.config.json" ]; then
  /usr/bin/python3 - "$DATA/keras/mnist_bn.config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
layers = c["config"]["layers"]
layers.insert(1, {"module": "keras.layers", "class_name": "RandomRotation", "config": {"name": "random_rotation",
              "factor": [-0.05, 0.1], "fill_mode": "nearest", "interpolation": "bilinear", "seed": None, "fill_value": 0.0}})
layers.insert(1, {"module": "keras.layers", "class_name": "RandomFlip", "config": {"name": "random_flip",
              "mode": "horizontal", "seed": None}})
json.dump(c, open("augmented.json", "w"))
PY
  "$DPTRAIN" import keras augmented.json -o imported.cfg >/dev/null &&
    grep -q '{ type = "random_flip"; input_shape = \[28, 28, 1\]; mode = "horizontal"; },' imported.cfg &&
    grep -q '{ type = "random_rotation"; factor = \[-0.05, 0.1\]; fill_mode = "nearest"; interpolation = "bilinear"; fill_value = 0.0; },' imported.cfg &&
    "$DPTRAIN" fit imported.cfg --dry-run >/dev/null 2>&1 &&
    pass "import keras: RandomFlip and RandomRotation become the job's leading entries" ||
    fail "import keras with random layers: $(grep random imported.cfg)"
fi

# refused: after a layer; on data that is not images; an unknown key
job late '{ type = "flatten"; }' '{ type = "random_flip"; }'
expect_error 2 "late.cfg:5: model.[1]: random_flip acts on the input images: put it before the model's layers" \
  "$DPTRAIN" fit late.cfg --run-dir bad1
cat >flat.cfg <<'EOF'
name = "flat";
data = { file = "flat.h5"; };
model = ( { type = "random_flip"; }, { type = "dense"; units = 2; activation = "softmax"; } );
fit = { epochs = 1; batch_size = 8; loss = "sparse_categorical_crossentropy"; };
EOF
/usr/bin/python3 -c "
import numpy as np
np.save('fx.npy', np.random.default_rng(1).random((20, 5)).astype(np.float32)); np.save('fy.npy', np.arange(20) % 2)"
"$DPTRAIN" import npy --x fx.npy --y fy.npy -o flat.h5 >/dev/null
expect_error 2 "flat.cfg:3: random_flip needs images, samples of shape (H, W, C); these are (None, 5)" \
  "$DPTRAIN" fit flat.cfg --run-dir bad2
job typo '{ type = "random_rotation"; factr = 0.1; }'
expect_error 2 "unknown key 'factr'" "$DPTRAIN" fit typo.cfg --run-dir bad3
finish
