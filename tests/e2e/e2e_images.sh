#!/usr/bin/env bash
# dptrain import images: a folder of 3 class folders of PNG (RGB, gray, palette, RGBA) and
# JPEG (color, gray) files, written here by Pillow, imports with the labels of the sorted folder
# names and the pixels Pillow decodes (RGB and grayscale); --size resizes as tf.image.resize
# (bilinear, half-pixel centers, computed here with NumPy); --test-split takes scikit-learn's rows;
# a damaged JPEG is named (refused, or left out with --bad skip); the class names reach inspect,
# evaluate and predict.
source "$(dirname "$0")/e2e_lib.sh"
/usr/bin/python3 -c "import PIL, numpy, h5py, sklearn" 2>/dev/null ||
  skip_test "python3-pil, python3-numpy, python3-h5py and python3-sklearn write and check the images"

/usr/bin/python3 - <<'PY' || fail "writing the images"
from PIL import Image
import numpy as np, os
rng = np.random.default_rng(4)
for ci, cls in enumerate(["bird", "cat", "zebra crossing"]):  # a space in a class name
    os.makedirs(f"pics/{cls}/more", exist_ok=True)
    for i in range(6):
        a = rng.integers(0, 256, size=(18, 22, 3), dtype=np.uint8)
        a[:, :, ci] = 40 * i
        kind = i % 6
        if kind == 0:
            Image.fromarray(a).save(f"pics/{cls}/a{i}.png")
        elif kind == 1:
            Image.fromarray(a[:, :, 0]).save(f"pics/{cls}/b{i}.PNG")           # gray
        elif kind == 2:
            Image.fromarray(a).quantize(16).save(f"pics/{cls}/c{i}.png")     # palette
        elif kind == 3:
            rgba = np.dstack([a, rng.integers(0, 256, size=(18, 22), dtype=np.uint8)])
            Image.fromarray(rgba, "RGBA").save(f"pics/{cls}/d{i}.png")       # alpha: dropped
        elif kind == 4:
            Image.fromarray(a).save(f"pics/{cls}/more/e{i}.jpg", quality=85)
        else:
            Image.fromarray(a[:, :, 1]).save(f"pics/{cls}/more/f{i}.jpeg", quality=95)
    open(f"pics/{cls}/README.txt", "w").write("not an image")
# a second set with other sizes, for --size
for ci, cls in enumerate(["big", "small"]):
    os.makedirs(f"sized/{cls}", exist_ok=True)
    for i, (h, w) in enumerate([(31, 17), (8, 40), (64, 64)]):
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(f"sized/{cls}/{i}.png")
PY

# reference SET OUT.h5 MODE [H W] [SPLIT]: the images in Keras' order (classes sorted, each folder's
# files sorted, then its subfolders), decoded by Pillow, resized by NumPy as TensorFlow does,
# compared with OUT.h5
cat >reference.py <<'PY'
import h5py, numpy as np, os, sys
from PIL import Image
from sklearn.model_selection import train_test_split
root, out, mode = sys.argv[1:4]
size = tuple(map(int, sys.argv[4:6])) if len(sys.argv) > 5 and sys.argv[4] != "-" else None
split = float(sys.argv[6]) if len(sys.argv) > 6 else 0
files = []
def walk(d, label):
    names = sorted(os.listdir(d))
    for n in names:
        p = os.path.join(d, n)
        if os.path.isfile(p) and n.lower().endswith((".png", ".jpg", ".jpeg")):
            files.append((p, label))
    for n in names:
        if os.path.isdir(os.path.join(d, n)):
            walk(os.path.join(d, n), label)
classes = sorted(c for c in os.listdir(root) if os.path.isdir(os.path.join(root, c)))
for label, c in enumerate(classes):
    walk(os.path.join(root, c), label)
def resize(a, h, w):  # tf.image.resize(method="bilinear"): half-pixel centers, no antialias
    a = a.astype(np.float64)
    def axis(n_out, n_in):
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        lo = np.maximum(np.floor(x), 0).astype(int)
        hi = np.minimum(np.ceil(x), n_in - 1).astype(int)
        return lo, np.maximum(hi, 0), x - np.floor(x)
    y0, y1, dy = axis(h, a.shape[0])
    x0, x1, dx = axis(w, a.shape[1])
    top = a[y0][:, x0] + (a[y0][:, x1] - a[y0][:, x0]) * dx[None, :, None]
    bot = a[y1][:, x0] + (a[y1][:, x1] - a[y1][:, x0]) * dx[None, :, None]
    return top + (bot - top) * dy[:, None, None]
def load(p):
    im = Image.open(p).convert("L" if mode == "grayscale" else "RGB")
    a = np.asarray(im)
    a = a[:, :, None] if a.ndim == 2 else a
    return resize(a, *size) if size else a.astype(np.float64)
idx = np.arange(len(files))
parts = {"train": idx}
if split:
    tr, te = train_test_split(idx, test_size=split, random_state=7)
    parts = {"train": tr, "test": te}
f = h5py.File(out, "r")
names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
assert names == classes, (names, classes)
worst = 0
for g, rows in parts.items():
    x, y = f[g + "/x"][()], f[g + "/y"][()]
    assert x.dtype == np.uint8 and len(x) == len(rows), (g, x.dtype, len(x), len(rows))
    assert list(y) == [files[i][1] for i in rows], g
    for k, i in enumerate(rows):
        want = load(files[i][0])
        worst = max(worst, np.abs(x[k].astype(np.float64) - want).max())
ok = worst <= (0.5000001 if size else 0)
print("%d images, classes %s, max difference from Pillow%s %.2g" % (len(files), names, " + tf.image.resize" if size else "", worst))
sys.exit(0 if ok else 1)
PY

for mode in rgb grayscale; do
  if "$DPTRAIN" import images pics -o pics-$mode.h5 --color $mode >import-$mode.log 2>&1; then
    out=$(/usr/bin/python3 reference.py pics pics-$mode.h5 $mode) && pass "$mode: $out" || fail "$mode: $out"
  else
    fail "import images --color $mode: $(tail -2 import-$mode.log)"
  fi
done
grep -q "3 other files or folders ignored" import-rgb.log && pass "the README.txt files are left out and counted" ||
  fail "ignored files: $(cat import-rgb.log)"
"$DPTRAIN" import images sized -o sized.h5 --size 12 20 >/dev/null &&
  out=$(/usr/bin/python3 reference.py sized sized.h5 rgb 12 20) && pass "--size 12 20 of 17x31, 40x8, 64x64: $out" ||
  fail "--size: $out"
"$DPTRAIN" import images pics -o split.h5 --color grayscale --test-split 0.25 --seed 7 >/dev/null &&
  out=$(/usr/bin/python3 reference.py pics split.h5 grayscale - - 0.25) && pass "--test-split 0.25 --seed 7: scikit-learn's rows; $out" ||
  fail "--test-split: $out"
expect_error 2 "sized/big/1.png: 40x8, but the first image is 17x31 (give --size H W" "$DPTRAIN" import images sized -o bad1.h5

# a damaged JPEG: cut in half
cp -r pics damaged
/usr/bin/python3 -c "
d = open('pics/cat/more/e4.jpg', 'rb').read()
open('damaged/cat/more/e4.jpg', 'wb').write(d[: len(d) // 2])"
expect_error 2 "damaged/cat/more/e4.jpg: JPEG: Premature end of JPEG file (leave such files out with --bad skip)" \
  "$DPTRAIN" import images damaged -o bad2.h5
"$DPTRAIN" import images damaged -o skipped.h5 --bad skip >skip.log 2>skip.err && grep -q "damaged/cat/more/e4.jpg: JPEG: .*left out" skip.err &&
  grep -q "/train 17 images.*1 left out" skip.log && pass "--bad skip: the damaged JPEG named and left out, 17 of 18 images" ||
  fail "--bad skip: $(cat skip.log skip.err)"
expect_error 2 "nothing: not a folder" "$DPTRAIN" import images nothing -o bad3.h5
mkdir -p one/only && cp pics/cat/a0.png one/only/
expect_error 2 "one: 1 class folder: a classification needs one folder per class, at least two" \
  "$DPTRAIN" import images one -o bad4.h5
[ -z "$(ls bad?.h5 2>/dev/null)" ] && pass "refused imports wrote nothing" || fail "refused imports left $(ls bad?.h5)"

# the class names: in inspect, in evaluate's report, in predict's CSV (from the checkpoint)
cat >pics.cfg <<'EOF'
name = "pics";
data = { file = "split.h5"; };
model = ( { type = "flatten"; }, { type = "dense"; units = 3; activation = "softmax"; } );
fit = { epochs = 2; batch_size = 4; loss = "sparse_categorical_crossentropy"; metrics = ["accuracy"]; optimizer = "adam"; };
EOF
"$DPTRAIN" inspect split.h5 | grep -q "classes: 0=bird 1=cat 2=zebra crossing" && pass "inspect shows the class names" ||
  fail "inspect: $("$DPTRAIN" inspect split.h5 | head -3)"
if "$DPTRAIN" fit pics.cfg --run-dir run >fit.log 2>&1; then
  "$DPTRAIN" evaluate run/last.h5 | grep -q "zebra crossing" && pass "evaluate's report names the classes" || fail "evaluate's class names"
  "$DPTRAIN" predict run/last.h5 --data split.h5 -o - 2>/dev/null | head -1 | grep -Eq ',[0-2],"(bird|cat|zebra crossing)"$' &&
    pass "predict's CSV: the class and its name" || fail "predict's names: $("$DPTRAIN" predict run/last.h5 --data split.h5 -o - 2>/dev/null | head -1)"
else
  fail "fit on the images: $(tail -2 fit.log)"
fi
finish
