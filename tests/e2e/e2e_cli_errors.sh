#!/usr/bin/env bash
# Bad input never crashes: each case gives one clear line naming the file, and exit code 2.
source "$(dirname "$0")/e2e_lib.sh"

cat >job.cfg <<'CFG'
name = "bad";
data = { file = "data.h5"; };
model = ( { type = "dense"; units = 4; activation = "relu"; }, { type = "dense"; units = 2; activation = "softmax"; } );
fit = { epochs = 1; batch_size = 8; loss = "sparse_categorical_crossentropy"; metrics = ["accuracy"]; };
CFG
# Every command that 'dptrain --help' lists answers its own --help with its usage and exit 0.
commands=$("$DPTRAIN" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }')
[ "$(echo "$commands" | wc -w)" -ge 10 ] || fail "dptrain --help lists commands: $commands"
for c in $commands; do
  out=$("$DPTRAIN" "$c" --help 2>&1) && grep -q "^usage: dptrain $c" <<<"$out" && pass "$c --help" ||
    fail "$c --help: $(head -2 <<<"$out")"
done

# A small valid data set: 3 features, labels 0..1
python_free_csv() { # rows cols
  local r c
  for ((r = 0; r < $1; r++)); do
    line=""
    for ((c = 0; c < $2; c++)); do line+="${line:+,}$(( (r * 7 + c * 3) % 11 )).5"; done
    echo "$line"
  done
}
python_free_csv 40 3 >x.csv
for ((r = 0; r < 40; r++)); do echo $((r % 2)); done >y.csv
"$DPTRAIN" import csv --x x.csv --y y.csv -o data.h5 >/dev/null || fail "import of a valid CSV"

# A job name names the run dir under runs/: never a path out of it (nothing is created outside)
mkdir -p names/deep/er && cp job.cfg data.h5 names/deep/er/
for n in '../../escaped' '..' '/' '' 'a/b'; do
  (cd names/deep/er && expect_error 2 "--set name: \"$n\" is not a plain name" "$DPTRAIN" fit job.cfg --set "name=\"$n\"")
done
sed 's|^name = "bad";|name = "../../escaped";|' job.cfg >names/deep/er/named.cfg
(cd names/deep/er && expect_error 2 'named.cfg:1: name: "../../escaped" is not a plain name' "$DPTRAIN" fit named.cfg)
[ -z "$(cd names && find . -newer x.csv -path './deep/er/job.cfg' -prune -o -path './deep/er/data.h5' -prune -o -type f -print 2>/dev/null)" ] &&
  [ ! -e escaped ] && [ ! -e names/escaped ] && [ ! -e names/deep/er/runs ] && pass "refused names created nothing" ||
  fail "a refused name created files: $(find names escaped 2>/dev/null)"

# Outputs that are not regular files, symbolic links and inputs are refused, and left as they were;
# inputs that are not regular files (a pipe would hang the reader) are refused.
"$DPTRAIN" fit job.cfg --run-dir paths_run >/dev/null 2>&1 || fail "fit for the path checks"
expect_error 2 "/dev/full exists and is not a regular file (a device)" "$DPTRAIN" synth --rows 10 --features 2 -o /dev/full
[ -c /dev/full ] && pass "/dev/full is still a device" || fail "/dev/full was replaced"
cp data.h5 target.h5 && ln -s target.h5 link.h5
expect_error 2 "link.h5 is a symbolic link" "$DPTRAIN" synth --rows 10 --features 2 -o link.h5
[ -L link.h5 ] && cmp -s data.h5 target.h5 && pass "the link and its target are untouched" || fail "link replaced"
expect_error 2 "data.h5: the output is the input data.h5" \
  "$DPTRAIN" predict job.cfg --weights paths_run/last.h5 --data data.h5 -o data.h5
expect_error 2 "paths_run/last.h5: the output is the input paths_run/last.h5" \
  "$DPTRAIN" predict job.cfg --weights paths_run/last.h5 --data data.h5 -o paths_run/last.h5
expect_error 2 "x.csv: the output is the input x.csv" "$DPTRAIN" import csv --x x.csv --y y.csv -o x.csv
expect_error 2 "job.cfg: the output is the input job.cfg" "$DPTRAIN" sbatch job.cfg -o job.cfg
mkfifo fifo
for cmd in "fit fifo" "import csv --x fifo --y y.csv -o f.h5" "import csv --x /dev/zero --y y.csv -o f.h5" \
           "fit job.cfg --run-dir fifo_run --resume fifo" "inspect fifo"; do
  # shellcheck disable=SC2086
  expect_error 2 "is not a regular file" timeout 20 "$DPTRAIN" $cmd
done
# Every file a fit, predict, import and sbatch create is where they were told (a fresh tree, with
# hostile names), and nothing else in the tree changes.
mkdir -p fresh/in && cp job.cfg data.h5 x.csv y.csv fresh/in/
out="../out 'q' \$(touch MARK)"
(cd fresh/in && "$DPTRAIN" fit job.cfg --set 'name="fresh \"run\""' --run-dir "$out/run" >/dev/null 2>&1 &&
  "$DPTRAIN" predict job.cfg --weights "$out/run/best.h5" --data data.h5 -o "$out/p.csv" >/dev/null &&
  "$DPTRAIN" import csv --x x.csv --y y.csv -o "$out/i.h5" >/dev/null &&
  "$DPTRAIN" sbatch job.cfg -o "$out/s.sh" >/dev/null) || fail "the commands in the fresh tree"
created=$(cd fresh && find . -type f -newer in/y.csv | sort | tr '\n' '|')
o="./out 'q' \$(touch MARK)"
[ "$created" = "$o/i.h5|$o/p.csv|$o/run/.dptrain.lock|$o/run/best.h5|$o/run/best.keras|$o/run/curves.png|$o/run/history.csv|$o/run/last.h5|$o/run/model.keras|$o/run/summary.json|$o/s.sh|" ] &&
  pass "files written only where asked: $created" || fail "files written: $created"

# HDF5 datasets whose values live in other files (external storage pointing at any file on the
# machine, virtual datasets) are refused in data sets and checkpoints.
if have_h5py; then
  /usr/bin/python3 - <<'PY' || fail "making external and virtual data sets"
import h5py, numpy as np
open("secret.bin", "wb").write(np.arange(120, dtype=np.float32).tobytes())
with h5py.File("ext.h5", "w") as f:
    f.create_dataset("train/x", shape=(40, 3), dtype="f4", external=[("secret.bin", 0, 480)])
    f.create_dataset("train/y", data=np.arange(40, dtype=np.int32) % 2)
with h5py.File("plain_x.h5", "w") as f:
    f.create_dataset("x", data=np.ones((40, 3), dtype="f4"))
layout = h5py.VirtualLayout(shape=(40, 3), dtype="f4")
layout[:] = h5py.VirtualSource("plain_x.h5", "x", shape=(40, 3))
with h5py.File("virt.h5", "w") as f:
    f.create_virtual_dataset("train/x", layout)
    f.create_dataset("train/y", data=np.arange(40, dtype=np.int32) % 2)
PY
  for f in ext virt; do
    expect_error 2 "$f.h5: dataset '/train/x' keeps its values in other files" \
      "$DPTRAIN" fit job.cfg --set "data.file=\"$f.h5\"" --run-dir "run_$f"
  done
  cp paths_run/last.h5 ext_ck.h5
  /usr/bin/python3 -c '
import h5py
f = h5py.File("ext_ck.h5", "r+")
del f["dense/dense/kernel:0"]
f["dense"].create_dataset("dense/kernel:0", shape=(3, 4), dtype="f4", external=[("secret.bin", 0, 48)])' ||
    fail "making an external checkpoint"
  expect_error 2 "dataset 'dense/kernel:0' keeps its values in other files" \
    "$DPTRAIN" predict job.cfg --weights ext_ck.h5 --data data.h5 -o ext_pred.csv
else
  skip_part "python3 with h5py not found: external and virtual datasets"
fi

# Values no model can use: NaN or infinite settings, features of width 0, CSV numbers beyond float32
expect_error 2 "fit.allreduce_bucket_mb: nan is not a finite number" "$DPTRAIN" fit job.cfg --set 'fit.allreduce_bucket_mb=nan'
expect_error 2 "fit.nccl_timeout: inf is not a finite number" "$DPTRAIN" fit job.cfg --set 'fit.nccl_timeout=inf'
printf '1,2\n3,1e39\n' >big.csv
printf '0\n1\n' >y2.csv
expect_error 2 "big.csv:2: field 2: 1e39 is beyond the float32 range" "$DPTRAIN" import csv --x big.csv --y y2.csv -o big.h5
if have_h5py; then
  /usr/bin/python3 -c '
import h5py, numpy as np
with h5py.File("empty_x.h5", "w") as f:
    f.create_dataset("train/x", shape=(40, 0), dtype="f4")
    f.create_dataset("train/y", data=np.arange(40, dtype=np.int32) % 2)' || fail "making a zero-width data set"
  expect_error 2 "empty_x.h5: /train/x has no features" "$DPTRAIN" fit job.cfg --set 'data.file="empty_x.h5"'
fi

# Directories as job file or output, and a --set beyond 32 bits, each with one line and exit 2
mkdir -p adir
expect_error 2 "adir is not a regular file (a directory)" "$DPTRAIN" fit adir
expect_error 2 "adir exists and is not a regular file (a directory)" "$DPTRAIN" import csv --x x.csv --y y.csv -o adir
expect_error 2 "--set fit.epochs: 99999999999 is out of range [1, 1000000000]" "$DPTRAIN" fit job.cfg --set fit.epochs=99999999999

# A job file with one 20 MB comment line parses in linear time (it took minutes), and comments of
# every kind keep the line numbers of what follows them.
{ printf '# '; head -c 20000000 /dev/zero | tr '\0' x; printf '\n/* a block\ncomment */ // and more\n'; cat job.cfg; } >long.cfg
timeout 60 "$DPTRAIN" fit long.cfg --dry-run >long.out 2>&1 && grep -q '^name = "bad";' long.out &&
  pass "a 20 MB comment line parses" || fail "20 MB comment line: $(tail -c 300 long.out)"
{ printf '# "a quote in a comment\n/* a block\ncomment */ // and more\n'; sed 's/epochs = 1;/epochs = 1; bogus = 2;/' job.cfg; } >lines.cfg
expect_error 2 "lines.cfg:7: fit.bogus: unknown key 'bogus'" "$DPTRAIN" fit lines.cfg
# Learning-rate schedules and ReduceLROnPlateau: what makes no sense is refused with file:line
sched_job() { # FILE OPTIMIZER-GROUP [MORE FIT KEYS]
  sed "s|fit = { epochs = 1;|fit = { epochs = 1; optimizer = $2; ${3:-}|" job.cfg >"$1"
}
sched_job warm.cfg '{ name = "adam"; learning_rate = { name = "cosine_decay"; initial_learning_rate = 0.0; decay_steps = 100; warmup_target = 0.01; warmup_steps = 200; }; }'
expect_error 2 "warm.cfg:4: fit.optimizer.learning_rate.warmup_steps: a warm-up of 200 steps is longer than the decay's 100" "$DPTRAIN" fit warm.cfg
sched_job neg.cfg '{ name = "sgd"; learning_rate = { name = "piecewise_constant_decay"; boundaries = [10]; values = [0.1, -0.01]; }; }'
expect_error 2 "neg.cfg:4: fit.optimizer.learning_rate.values: a learning rate cannot be negative" "$DPTRAIN" fit neg.cfg
sched_job unknown.cfg '{ name = "adam"; learning_rate = { name = "OneCycle"; }; }'
expect_error 2 '"OneCycle" is not one of "constant", "exponential_decay", "piecewise_constant_decay"' "$DPTRAIN" fit unknown.cfg
sched_job takes.cfg '{ name = "adam"; learning_rate = { name = "ExponentialDecay"; initial_learning_rate = 0.1; decay_steps = 10; decay_rate = 0.9; alpha = 0.1; }; }'
expect_error 2 "takes.cfg:4: fit.optimizer.learning_rate.alpha: exponential_decay does not take 'alpha'" "$DPTRAIN" fit takes.cfg
sched_job plateau.cfg '{ name = "adam"; learning_rate = { name = "cosine_decay"; initial_learning_rate = 0.1; decay_steps = 10; }; }' 'reduce_lr_on_plateau = { patience = 2; };'
expect_error 2 "reduce_lr_on_plateau needs a constant learning rate, not a schedule" "$DPTRAIN" fit plateau.cfg
sched_job factor.cfg '"adam"' 'reduce_lr_on_plateau = { factor = 1.5; };'
expect_error 2 "fit.reduce_lr_on_plateau.factor: 1.5 is out of range (0, 1)" "$DPTRAIN" fit factor.cfg
# Layers and their options
expect_error 2 'alpha: applies to activation "elu" only, not "relu"' "$DPTRAIN" fit job.cfg --set 'model.[0].alpha=0.5'
expect_error 2 'there is no bias to initialize' "$DPTRAIN" fit job.cfg --set model.[0].use_bias=false --set 'model.[0].bias_initializer="ones"'
expect_error 2 '"he_norma" is not one of "glorot_uniform", "glorot_normal", "he_uniform", "he_normal"' "$DPTRAIN" fit job.cfg --set 'model.[0].kernel_initializer="he_norma"'
sed 's|model = ( { type = "dense"; units = 4;|model = ( { type = "global_average_pooling2d"; }, { type = "dense"; units = 4;|' job.cfg >gap.cfg
expect_error 2 "gap.cfg:3: global_average_pooling2d expects (height, width, channels) samples but gets 1 dimensions" "$DPTRAIN" fit gap.cfg
sed 's|model = ( { type = "dense"; units = 4;|model = ( { type = "reshape"; target_shape = [2, 2]; }, { type = "dense"; units = 4;|' job.cfg >reshape.cfg
expect_error 2 "reshape.cfg:3: reshape: target_shape (None, 2, 2) does not hold the 3 values of the input (None, 3)" "$DPTRAIN" fit reshape.cfg

# BatchNormalization: only the last axis, counted as Keras counts (the batch is axis 0)
sed 's|model = ( { type = "dense"; units = 4; activation = "relu"; },|model = ( { type = "dense"; units = 4; activation = "relu"; }, { type = "BatchNormalization"; axis = 3; },|' job.cfg >bnaxis.cfg
expect_error 2 "bnaxis.cfg:3: batch_normalization: axis 3 does not exist in its input (None, 4)" "$DPTRAIN" fit bnaxis.cfg
sed 's|axis = 3;|axis = 0;|' bnaxis.cfg >bnaxis0.cfg
expect_error 2 "bnaxis0.cfg:3: batch_normalization: axis 0 of its input (None, 4) is not the last: only the last axis (-1, or 1 here)" "$DPTRAIN" fit bnaxis0.cfg
sed 's|axis = 3;|epsilon = 0.0;|' bnaxis.cfg >bneps.cfg
expect_error 2 "bneps.cfg:3: model.[1].epsilon: epsilon must be positive" "$DPTRAIN" fit bneps.cfg

# A NUL in a job file: libconfig would drop a \x00 escape from the name, and a NUL byte would end
# the file there, ignoring what follows.
sed 's/name = "bad";/name = "ba\\x00d";/' job.cfg >nulname.cfg
expect_error 2 "nulname.cfg:1: a string holds \\x00" "$DPTRAIN" fit nulname.cfg
{ cat job.cfg; printf 'fit = { epochs = 2; };\0\n'; } >nulbyte.cfg
expect_error 2 "nulbyte.cfg:5: a NUL byte" "$DPTRAIN" fit nulbyte.cfg

# command line
expect_error 2 "unknown command 'fitt'" "$DPTRAIN" fitt job.cfg
expect_error 2 "fit: unknown option" "$DPTRAIN" fit job.cfg --bogus
expect_error 2 "report: which report? (known: scaling" "$DPTRAIN" report
expect_error 2 "import: which format? (known: csv, mnist" "$DPTRAIN" import
expect_error 2 "--set 'fit': expected KEY=VALUE" "$DPTRAIN" fit job.cfg --set fit
expect_error 2 "--set fit.epochs=two: expected an integer" "$DPTRAIN" fit job.cfg --set fit.epochs=two
expect_error 2 "missing.cfg: cannot open job file" "$DPTRAIN" fit missing.cfg

# job files
sed 's/units = 4;/units = 4; unitz = 3;/' job.cfg >unknown.cfg
expect_error 2 "unknown.cfg:3: model.[0].unitz: unknown key" "$DPTRAIN" fit unknown.cfg
sed 's/epochs = 1;/epochs = "1";/' job.cfg >type.cfg
expect_error 2 "type.cfg:4: fit.epochs: expected an integer" "$DPTRAIN" fit type.cfg
sed 's/epochs = 1;/epochs = 1 batch_size/' job.cfg >syntax.cfg
expect_error 2 "syntax.cfg:4: syntax error" "$DPTRAIN" fit syntax.cfg
sed 's/activation = "relu"/activation = "re\\nlu"/' job.cfg >newline.cfg # a quoted newline stays on the one line
expect_error 2 'newline.cfg:3: model.[0].activation: "re\nlu" is not one of' "$DPTRAIN" fit newline.cfg
sed 's/units = 4;/units = 4; input_shape = [4];/' job.cfg >shape.cfg # Keras' input_shape, checked against the data
expect_error 2 "shape.cfg:3: input_shape (4) does not match the data, whose samples are (3)" "$DPTRAIN" fit shape.cfg
sed 's/units = 4;/units = 4; input_shape = [3];/' job.cfg >shape_ok.cfg
"$DPTRAIN" fit shape_ok.cfg --run-dir shape_ok >shape_ok.log 2>&1 && pass "input_shape that matches the data trains" ||
  fail "input_shape [3]: $(tail -2 shape_ok.log)"
grep -v '^fit' job.cfg >nofit.cfg
expect_error 2 "nofit.cfg: missing section 'fit'" "$DPTRAIN" fit nofit.cfg

# data files
sed 's/data.h5/nothere.h5/' job.cfg >nodata.cfg
expect_error 2 "nothere.h5: cannot open" "$DPTRAIN" fit nodata.cfg --run-dir r1
head -c $(($(stat -c %s data.h5) / 2)) data.h5 >trunc.h5
sed 's/data.h5/trunc.h5/' job.cfg >trunc.cfg
expect_error 2 "trunc.h5" "$DPTRAIN" fit trunc.cfg --run-dir r2
echo "hello" >text.h5
sed 's/data.h5/text.h5/' job.cfg >text.cfg
expect_error 2 "text.h5: not an HDF5 file" "$DPTRAIN" fit text.cfg --run-dir r3
for ((r = 0; r < 40; r++)); do echo $((r % 3)); done >y3.csv
"$DPTRAIN" import csv --x x.csv --y y3.csv -o labels3.h5 >/dev/null
sed 's/data.h5/labels3.h5/' job.cfg >labels.cfg
expect_error 2 "labels3.h5 /train row 2: label 2 is out of range for the output layer (expected 0..1: classes count from 0; give the last layer 3 units" \
  "$DPTRAIN" fit labels.cfg --run-dir r4
# Labels 1 and 2 for a 2-unit output: import says the range it found and what a model needs
for ((r = 0; r < 40; r++)); do echo $((r % 2 + 1)); done >y12.csv
"$DPTRAIN" import csv --x x.csv --y y12.csv -o labels12.h5 >import12.log 2>&1 &&
  grep -q "y int32 labels 1..2 (classes count from 0, as in Keras: a model for these needs 3 outputs, or subtract 1)" import12.log &&
  pass "import csv says labels 1..2 count from 1" || fail "import csv on labels 1..2: $(cat import12.log)"
sed 's/data.h5/shape.h5/; s/"sparse_categorical_crossentropy"/"mse"/; s/"accuracy"/"mae"/; s/"softmax"/"linear"/' job.cfg >shape.cfg
"$DPTRAIN" synth --rows 50 --features 3 --targets 3 -o shape.h5 >/dev/null
expect_error 2 "shape.h5: /train/y has 3 columns but the model's last layer has 2 units" "$DPTRAIN" fit shape.cfg --run-dir r5
sed '5s/.*/1.5,nan,2/' x.csv >xnan.csv
expect_error 2 "xnan.csv:5: field 2 is not finite" "$DPTRAIN" import csv --x xnan.csv --y y.csv -o n.h5
sed '7s/.*/1,2/' x.csv >ragged.csv
expect_error 2 "ragged.csv:7: 2 fields, but line 1 has 3" "$DPTRAIN" import csv --x ragged.csv --y y.csv -o r.h5
sed '9s/.*/1,abc,2/' x.csv >word.csv
expect_error 2 "word.csv:9: field 2: 'abc' is not a number" "$DPTRAIN" import csv --x word.csv --y y.csv -o w.h5
[ ! -e r.h5 ] && [ ! -e w.h5 ] && pass "failed imports leave no output file" || fail "a failed import left a file"
# An interrupted writer (Ctrl-C, a job killed at its time limit) deletes its temporary file.
"$DPTRAIN" synth --rows 50000000 --features 10 -o stopped.h5 >/dev/null 2>&1 &
writer=$!
for _ in $(seq 200); do ls stopped.h5.tmp.* >/dev/null 2>&1 && break; sleep 0.05; done
kill -TERM $writer
wait $writer
rc=$?
[ $rc -eq 143 ] && [ -z "$(ls stopped.h5* 2>/dev/null)" ] && pass "a writer stopped by SIGTERM leaves no temporary file" ||
  fail "SIGTERM during synth: exit $rc, left: $(ls stopped.h5* 2>/dev/null)"
head -n 30 y.csv >yshort.csv
expect_error 2 "x.csv has 40 rows but yshort.csv has 30" "$DPTRAIN" import csv --x x.csv --y yshort.csv -o s.h5
expect_error 2 "weights.h5: cannot open" "$DPTRAIN" evaluate job.cfg --weights weights.h5
"$DPTRAIN" fit job.cfg --run-dir good >/dev/null 2>&1 || fail "a valid fit failed"
touch plainfile
expect_error 2 "plainfile: not a directory (the run dir)" "$DPTRAIN" fit job.cfg --run-dir plainfile
grep -q "^Epoch" out.txt && fail "a run dir that is a file was found only after training" ||
  pass "a run dir that is a file is refused before training"
long_dir=$(printf 'd%.0s' {1..200}); long_dir=$(printf "$long_dir/%.0s" {1..20})
expect_error 2 "the run dir's path is too long (4020 characters; at most 4000)" "$DPTRAIN" fit job.cfg --run-dir "$long_dir"
sed 's/units = 4;/units = 5;/' job.cfg >other.cfg
"$DPTRAIN" import csv --x x.csv --y y.csv -o data.h5 --test-split 0.25 --seed 1 >/dev/null
expect_error 2 "good/best.h5 (layer dense, model layer dense): dataset 'dense/kernel:0' has shape (3, 4), expected (3, 5)" \
  "$DPTRAIN" evaluate other.cfg --weights good/best.h5

# flip_bit FILE DATASET: flips one bit in the middle of DATASET's stored values (found by its bytes,
# as h5dump writes them); checksums must catch it.
flip_bit() {
  h5dump -b LE -d "$2" -o values.bin "$1" >/dev/null || return 1
  /usr/bin/python3 - "$1" values.bin <<'PY'
import sys
data, values = bytearray(open(sys.argv[1], "rb").read()), open(sys.argv[2], "rb").read()
at = data.find(values)
assert at >= 0 and data.find(values, at + 1) < 0, "the values are not stored once, uncompressed"
data[at + len(values) // 2] ^= 0x10
open(sys.argv[1], "wb").write(data)
PY
}
cp good/best.h5 flipped.h5
flip_bit flipped.h5 /dense/dense/kernel:0 || fail "cannot find the kernel's bytes in best.h5"
expect_error 2 "flipped.h5 (layer dense, model layer dense): cannot read dataset 'dense/kernel:0' (damaged file?)" \
  "$DPTRAIN" evaluate job.cfg --weights flipped.h5
cp data.h5 flipdata.h5
flip_bit flipdata.h5 /train/x || fail "cannot find /train/x's bytes in data.h5"
sed 's/data.h5/flipdata.h5/' job.cfg >flip.cfg
expect_error 2 "flipdata.h5: cannot read /train rows" "$DPTRAIN" fit flip.cfg --run-dir r6
finish
