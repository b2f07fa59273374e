#!/usr/bin/env bash
# Files Keras wrote (the example data's keras/: four models, each saved as Keras 3's .weights.h5 and
# as a legacy whole-model .h5, with inputs and the predictions Keras made on them; for the two
# BatchNormalization models also in the legacy weights layout): dptrain reads every layout and
# predicts what Keras recorded (max absolute difference under 1e-5); a fit can start from such a
# file (fit.initial_weights); a file for another model is refused, naming the layer, and a fit so
# refused leaves no run dir.
# The models' job files are in tests/e2e/keras_models/.
source "$(dirname "$0")/e2e_lib.sh"
KERAS=$DATA/keras
MODELS=$SRC/tests/e2e/keras_models
have_h5py || skip_test "python3-h5py reads the Keras files' inputs and predictions"
[ -f "$KERAS/mnist_bn.weights.h5" ] || skip_test "$KERAS/mnist_bn.weights.h5 not found"

make_io() { # MODEL DIR: DIR/io.h5
  mkdir -p "$2" && keras_io_h5 "$1" "$2/io.h5"
}
# max_abs_diff PRED.h5 MODEL: prints the difference from Keras' predictions; fails above 1e-5
max_abs_diff() {
  /usr/bin/python3 - "$1" "$KERAS/$2_io.h5" <<'PY'
import h5py, numpy as np, sys
got, want = h5py.File(sys.argv[1], "r")["predictions"][()], h5py.File(sys.argv[2], "r")["y"][()]
err = np.abs(got - want).max()
print("max absolute difference %.2g" % err)
sys.exit(0 if err < 1e-5 else 1)
PY
}

for model in cancer_mlp mnist_cnn mnist_bn mlp_bn; do
  make_io "$model" "$model" || { fail "$model: io.h5"; continue; }
  files=("$model.weights.h5" "${model}_full_legacy.h5")
  # (cancer_mlp's and mnist_cnn's weights-layout files hold other, earlier weights)
  case $model in *_bn) files+=("${model}_keras3.16.0_legacy.h5") ;; esac
  for file in "${files[@]}"; do
    if (cd "$model" && "$DPTRAIN" predict "$MODELS/$model.cfg" --weights "$KERAS/$file" --data io.h5 -o "$file-pred.h5" \
          >/dev/null 2>pred.err); then
      out=$(max_abs_diff "$model/$file-pred.h5" "$model") && pass "$file: dptrain predicts what Keras recorded ($out)" ||
        fail "$file: $out"
    else
      fail "$file: predict: $(cat "$model/pred.err")"
    fi
  done
done

# dptrain import keras: the job file of each model, from its config.json and from its legacy
# whole-model .h5 (the same job either way); with Keras' weights it predicts what Keras recorded,
# and it trains.
for model in cancer_mlp mnist_cnn mnist_bn mlp_bn; do
  (cd "$model" &&
   "$DPTRAIN" import keras "$KERAS/$model.config.json" -o imported.cfg >import.log 2>&1 &&
   "$DPTRAIN" import keras "$KERAS/${model}_full_legacy.h5" -o imported-h5.cfg >>import.log 2>&1) ||
    { fail "$model: import keras: $(tail -1 "$model/import.log")"; continue; }
  diff <(sed 1d "$model/imported.cfg") <(sed 1d "$model/imported-h5.cfg") >/dev/null &&
    pass "$model: config.json and the legacy .h5 import to the same job" || fail "$model: the two imports differ"
  if (cd "$model" && "$DPTRAIN" predict imported.cfg --weights "$KERAS/$model.weights.h5" --data io.h5 -o imported-pred.h5 \
        >/dev/null 2>imported.err); then
    out=$(max_abs_diff "$model/imported-pred.h5" "$model") && pass "$model: the imported job with Keras' weights predicts what Keras did ($out)" ||
      fail "$model: imported job: $out"
  else
    fail "$model: predict with the imported job: $(cat "$model/imported.err")"
  fi
  (cd "$model" && "$DPTRAIN" fit imported.cfg --set 'data.file="io.h5"' --set fit.batch_size=4 --run-dir imported-run \
     >imported-fit.log 2>&1) && pass "$model: the imported job trains" || fail "$model: fit the imported job: $(tail -2 "$model/imported-fit.log")"
done
grep -q 'optimizer = { name = "AdamW"; learning_rate = 0.001;.* weight_decay = 0.0001;' mnist_bn/imported.cfg &&
  grep -q 'kernel_regularizer = { name = "l1_l2"; l1 = 0.0; l2 = 0.0001; }' mlp_bn/imported.cfg &&
  grep -q 'kernel_initializer = "he_normal"' mlp_bn/imported.cfg && grep -q 'momentum = 0.9; nesterov = true;' cancer_mlp/imported.cfg &&
  pass "imported options: AdamW's weight decay, an l2 penalty, he_normal, sgd's nesterov momentum" ||
  fail "imported options: $(grep -h 'optimizer\|regularizer' mnist_bn/imported.cfg mlp_bn/imported.cfg | head -3)"
# What dptrain cannot train is refused, naming the layer and option; nothing is written.
/usr/bin/python3 - "$KERAS/mnist_bn.config.json" <<'PY' || fail "writing the bad configurations"
import json, sys
c = json.load(open(sys.argv[1]))
lstm = json.loads(json.dumps(c)); lstm["config"]["layers"][2]["class_name"] = "LSTM"
json.dump(lstm, open("lstm.json", "w"))
dil = json.loads(json.dumps(c)); dil["config"]["layers"][1]["config"]["dilation_rate"] = [2, 2]
json.dump(dil, open("dilated.json", "w"))
fun = json.loads(json.dumps(c)); fun["class_name"] = "Functional"
json.dump(fun, open("functional.json", "w"))
open("damaged.json", "w").write(json.dumps(c)[:500])
PY
expect_error 2 "lstm.json: layer 3 (LSTM batch_normalization): dptrain has no LSTM layer" "$DPTRAIN" import keras lstm.json -o j1.cfg
expect_error 2 "dilated.json: layer 2 (Conv2D conv2d): dilation_rate = [2,2] is not supported" "$DPTRAIN" import keras dilated.json -o j2.cfg
expect_error 2 "functional.json: a Functional model: dptrain trains Sequential models" "$DPTRAIN" import keras functional.json -o j3.cfg
expect_error 2 "damaged.json: the model configuration is not a JSON object" "$DPTRAIN" import keras damaged.json -o j4.cfg
expect_error 2 "mnist_bn.weights.h5: no model_config attribute" "$DPTRAIN" import keras "$KERAS/mnist_bn.weights.h5" -o j5.cfg
expect_error 2 "mnist_bn.keras: a .keras file is a zip" "$DPTRAIN" import keras "$KERAS/mnist_bn.keras" -o j6.cfg
[ -z "$(ls j?.cfg 2>/dev/null)" ] && pass "refused imports wrote nothing" || fail "refused imports left $(ls j?.cfg)"

# Fine-tuning from Keras' weights: a fit that starts from cancer_mlp.weights.h5 with a rate of 0
# (1e-300 in float) keeps them (no BatchNormalization statistics to move), so its last.h5
# predicts what Keras did; a model the file does not fit is refused before training, naming it.
(cd cancer_mlp && "$DPTRAIN" fit "$MODELS/cancer_mlp.cfg" --set "fit.initial_weights=\"$KERAS/cancer_mlp.weights.h5\"" \
   --set fit.optimizer.learning_rate=1e-300 --run-dir tuned >tuned.log 2>&1 &&
 "$DPTRAIN" predict tuned/last.h5 --data io.h5 -o tuned-pred.h5 >/dev/null) || fail "fine-tuning run: $(tail -2 cancer_mlp/tuned.log)"
grep -q "^Initial weights: .*cancer_mlp.weights.h5" cancer_mlp/tuned.log && out=$(max_abs_diff cancer_mlp/tuned-pred.h5 cancer_mlp) &&
  pass "fit.initial_weights from Keras' .weights.h5: the run starts from them ($out)" || fail "fit.initial_weights: $out"
sed 's/units = 60;/units = 61;/' "$MODELS/cancer_mlp.cfg" >other.cfg
expect_error 2 "cancer_mlp.weights.h5 (layer dense_1)" \
  "$DPTRAIN" fit other.cfg --set "fit.initial_weights=\"$KERAS/cancer_mlp.weights.h5\"" --set 'data.file="cancer_mlp/io.h5"' --run-dir other
[ ! -e other ] && pass "the refused run wrote nothing" || fail "the refused run left $(ls other)"
expect_error 2 "mnist_bn.weights.h5: layer conv2d has 1 weights in the file but 2 in the model" \
  "$DPTRAIN" predict "$MODELS/mnist_cnn.cfg" --weights "$KERAS/mnist_bn.weights.h5" --data mnist_cnn/io.h5 -o x.h5
[ ! -e x.h5 ] && pass "the refused predict wrote nothing" || fail "the refused predict left x.h5"
finish
