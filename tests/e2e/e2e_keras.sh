#!/usr/bin/env bash
# Files Keras wrote (the example data's keras/: four models, each saved as Keras 3's .keras and
# .weights.h5 and as a legacy whole-model .h5, with inputs and the predictions Keras made on them; for the two
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
  files=("$model.keras" "$model.weights.h5" "${model}_full_legacy.h5")
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
   "$DPTRAIN" import keras "$KERAS/${model}_full_legacy.h5" -o imported-h5.cfg >>import.log 2>&1 &&
   "$DPTRAIN" import keras "$KERAS/$model.keras" -o imported-keras.cfg >>import.log 2>&1) ||
    { fail "$model: import keras: $(tail -1 "$model/import.log")"; continue; }
  diff <(sed 1d "$model/imported.cfg") <(sed 1d "$model/imported-h5.cfg") >/dev/null &&
    diff <(sed 1d "$model/imported.cfg") <(sed 1d "$model/imported-keras.cfg") >/dev/null &&
    pass "$model: the .keras file, its config.json and the legacy .h5 import to the same job" || fail "$model: the imports differ"
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
# a .keras file cut short, and one whose weights member has a flipped byte (the zip's CRC catches it)
raw = open(sys.argv[1].replace(".config.json", ".keras"), "rb").read()
open("cut.keras", "wb").write(raw[: len(raw) // 2])
import zipfile
with zipfile.ZipFile(sys.argv[1].replace(".config.json", ".keras")) as z, zipfile.ZipFile("flipped.keras", "w", zipfile.ZIP_STORED) as out:
    for info in z.infolist():
        out.writestr(info.filename, z.read(info.filename))
raw = bytearray(open("flipped.keras", "rb").read())
at = raw.find(b"\x89HDF") + 5000
raw[at] ^= 0xFF
open("flipped.keras", "wb").write(bytes(raw))
with zipfile.ZipFile("noweights.keras", "w") as out:
    out.writestr("config.json", json.dumps(c))
PY
expect_error 2 "lstm.json: layer 3 (LSTM batch_normalization): dptrain has no LSTM layer" "$DPTRAIN" import keras lstm.json -o j1.cfg
expect_error 2 "dilated.json: layer 2 (Conv2D conv2d): dilation_rate = [2,2] is not supported" "$DPTRAIN" import keras dilated.json -o j2.cfg
expect_error 2 "functional.json: a Functional model: dptrain trains Sequential models" "$DPTRAIN" import keras functional.json -o j3.cfg
expect_error 2 "damaged.json: the model configuration is not a JSON object" "$DPTRAIN" import keras damaged.json -o j4.cfg
expect_error 2 "mnist_bn.weights.h5: no model_config attribute" "$DPTRAIN" import keras "$KERAS/mnist_bn.weights.h5" -o j5.cfg
expect_error 2 "cut.keras: not a readable zip archive" "$DPTRAIN" import keras cut.keras -o j6.cfg
expect_error 2 "flipped.keras: member model.weights.h5 is damaged" \
  "$DPTRAIN" predict "$MODELS/mnist_bn.cfg" --weights flipped.keras --data mnist_bn/io.h5 -o j7.h5
expect_error 2 "noweights.keras: the archive holds no model.weights.h5" \
  "$DPTRAIN" predict "$MODELS/mnist_bn.cfg" --weights noweights.keras --data mnist_bn/io.h5 -o j8.h5
[ -z "$(ls j?.* 2>/dev/null)" ] && pass "refused imports and predictions wrote nothing" || fail "refused runs left $(ls j?.*)"

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
# ---- Keras files dptrain writes (fit's RUN_DIR/model.keras, dptrain export) ----
# keras_reference.py reads whole-model files the way Keras' load_model does (zip, json, h5py,
# NumPy); first it must agree with Keras itself on Keras' own files.
REF=$SRC/tests/e2e/keras_reference.py
# pred_diff A.h5 B.h5 TOL: max absolute difference of two /predictions; fails above TOL
pred_diff() {
  /usr/bin/python3 - "$@" <<'PY'
import h5py, numpy as np, sys
a, b = (h5py.File(p, "r")["predictions"][()].astype(np.float64) for p in sys.argv[1:3])
err = np.abs(a - b).max() if a.shape == b.shape else np.inf
print("max absolute difference %.2g" % err)
sys.exit(0 if err <= float(sys.argv[3]) else 1)
PY
}
for model in cancer_mlp mnist_cnn mnist_bn mlp_bn; do
  for file in "$model.keras" "${model}_full_legacy.h5"; do
    /usr/bin/python3 "$REF" predict "$KERAS/$file" "$KERAS/${model}_io.h5" "$model/ref-$file.h5" &&
      out=$(max_abs_diff "$model/ref-$file.h5" "$model") && pass "the test's Keras reader on Keras' $file: what Keras predicted ($out)" ||
      fail "the test's Keras reader on $file: $out"
  done
done

# Each model trained by dptrain (cancer_mlp and mlp_bn with normalize = "standard": a
# Normalization layer; mnist_cnn on uint8 pixels: a Rescaling layer), then written as .keras by fit
# and as a legacy .h5 by export: the files have Keras' structure, and Keras' reading of them
# predicts what dptrain does on the raw rows.
/usr/bin/python3 - mnist_cnn/io.h5 mnist_cnn/io-uint8.h5 <<'PY' || fail "uint8 copy of mnist_cnn's inputs"
import h5py, numpy as np, sys
src = h5py.File(sys.argv[1], "r")
with h5py.File(sys.argv[2], "w") as f:
    for g in ("train", "test"):
        f[g + "/x"] = np.round(src[g + "/x"][()] * 255).astype(np.uint8)
        f[g + "/y"] = src[g + "/y"][()]
    f["x"] = f["test/x"][()]
PY
for model in cancer_mlp mnist_cnn mnist_bn mlp_bn; do
  data=io.h5 sets=()
  case $model in cancer_mlp | mlp_bn) sets=(--set 'data.normalize="standard"') ;; mnist_cnn) data=io-uint8.h5 ;; esac
  (cd "$model" && [ -f "$data" ] && /usr/bin/python3 -c "import h5py,sys; f=h5py.File('$data','a'); 'x' in f or f.create_dataset('x', data=f['test/x'][()])" &&
   "$DPTRAIN" fit "$MODELS/$model.cfg" --set "data.file=\"$data\"" "${sets[@]}" --set fit.epochs=2 --run-dir trained \
     >trained.log 2>&1 && "$DPTRAIN" export trained/last.h5 -o exported.h5 >/dev/null &&
   "$DPTRAIN" predict trained/last.h5 --data "$data" -o dp-pred.h5 >/dev/null) ||
    { fail "$model: train and export: $(tail -2 "$model/trained.log")"; continue; }
  grep -q "^Keras model: trained/model.keras" "$model/trained.log" && [ -f "$model/trained/best.keras" ] &&
    pass "$model: fit wrote model.keras and best.keras" || fail "$model: fit's Keras files: $(ls "$model/trained")"
  out=$(/usr/bin/python3 "$REF" structure "$model/trained/model.keras" "$KERAS/$model.keras" 2>&1) &&
    pass "$model: model.keras has the structure of Keras' own ($(tail -1 <<<"$out"))" || fail "$model: model.keras structure: $out"
  out=$(/usr/bin/python3 "$REF" structure "$model/exported.h5" "$KERAS/${model}_full_legacy.h5" 2>&1) &&
    pass "$model: the exported .h5 has the structure of Keras' own" || fail "$model: exported .h5 structure: $out"
  for file in trained/model.keras exported.h5; do
    /usr/bin/python3 "$REF" predict "$model/$file" "$model/$data" "$model/ref-ours.h5" &&
      out=$(pred_diff "$model/ref-ours.h5" "$model/dp-pred.h5" 1e-5) &&
      pass "$model: Keras' reading of dptrain's $file predicts what dptrain does on the raw rows ($out)" ||
      fail "$model: $file read as Keras does: $out"
  done
  # dptrain reads its own .keras: alone (the job from its config.json) and with the job file
  (cd "$model" && "$DPTRAIN" predict trained/model.keras --data "$data" -o alone.h5 >/dev/null &&
   "$DPTRAIN" predict "$MODELS/$model.cfg" "${sets[@]}" --weights trained/model.keras --data "$data" -o with-job.h5 >/dev/null) &&
    out=$(pred_diff "$model/alone.h5" "$model/dp-pred.h5" 0) && out2=$(pred_diff "$model/with-job.h5" "$model/dp-pred.h5" 0) &&
    pass "$model: predict from model.keras, alone and with the job, equals predict from last.h5 (bit for bit)" ||
    fail "$model: predict from model.keras: $out $out2"
done

# The round trip job -> .keras -> job: the imported job, trained with the same seed, data and
# epochs, ends with the same weights bit for bit (the same layers, initializers, penalties,
# optimizer and schedule). cancer_mlp with Keras 2's time-based decay, which becomes Keras 3's
# InverseTimeDecay and back.
for model in cancer_mlp mnist_bn mlp_bn; do
  # (not Keras' settings, so not in the file: the same for both) ...
  sets=(--set fit.epochs=2 --set fit.seed=11)
  # ... and settings the .keras file carries over, given to the first job only
  own=()
  [ "$model" = cancer_mlp ] && own=(--set fit.optimizer.decay=0.01)
  [ "$model" = mlp_bn ] && own=(--set 'data.normalize="standard"')
  (cd "$model" && "$DPTRAIN" fit "$MODELS/$model.cfg" "${sets[@]}" "${own[@]}" --run-dir rt1 >rt1.log 2>&1 &&
   "$DPTRAIN" import keras rt1/model.keras -o roundtrip.cfg >/dev/null &&
   "$DPTRAIN" fit roundtrip.cfg --set 'data.file="io.h5"' --set fit.batch_size=8 "${sets[@]}" --run-dir rt2 >rt2.log 2>&1) ||
    { fail "$model: round trip: $(tail -2 "$model/rt1.log" "$model/rt2.log" 2>/dev/null)"; continue; }
  out=$(/usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" "$model/rt1/last.h5" "$model/rt2/last.h5" 0 2>&1) &&
    pass "$model: job -> .keras -> job trains to the same weights ($out)" || fail "$model: round trip weights: $out"
done
grep -q 'learning_rate = { name = "InverseTimeDecay"; initial_learning_rate = 0.01; decay_steps = 1.0; decay_rate = 0.01;' \
  cancer_mlp/roundtrip.cfg && pass "sgd's decay went out as InverseTimeDecay" || fail "decay: $(grep optimizer cancer_mlp/roundtrip.cfg)"

# What Keras cannot express is refused by export (one line, exit 2, nothing written); fit says
# so in a warning and succeeds.
sed 's/activation = "gelu";/activation = "gelu"; approximate = true;/' "$MODELS/mlp_bn.cfg" >approx.cfg
(cd mlp_bn && "$DPTRAIN" fit ../approx.cfg --set fit.epochs=1 --run-dir approx >approx.log 2>&1) &&
  grep -q "model.keras not written: .*approximate" mlp_bn/approx.log && [ ! -e mlp_bn/approx/model.keras ] &&
  pass "fit of a model Keras cannot express: a warning, no model.keras" || fail "approximate gelu: $(tail -3 mlp_bn/approx.log)"
expect_error 2 "layer activation: activation gelu with approximate = 1" "$DPTRAIN" export mlp_bn/approx/last.h5 -o k1.keras
expect_error 2 "k2.txt: a Keras model file ends in .keras" "$DPTRAIN" export mlp_bn/trained/last.h5 -o k2.txt
expect_error 2 "history.csv: not an HDF5 file" "$DPTRAIN" export mlp_bn/trained/history.csv -o k3.keras
[ -z "$(ls k?.* 2>/dev/null)" ] && pass "refused exports wrote nothing" || fail "refused exports left $(ls k?.*)"
finish
