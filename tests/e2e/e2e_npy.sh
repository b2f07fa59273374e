#!/usr/bin/env bash
# dptrain import npy: NumPy's own files (written here by Debian's python3-numpy) import to the
# values NumPy holds: every numeric dtype numpy.save writes, in both byte orders; .npz (plain and
# compressed, named keys, Keras' x_train/x_test layout); Fortran order; --test-split picks the rows
# import csv (scikit-learn's split) picks; a file larger than the chunks imports in bounded memory;
# bad files are one line, exit 2, nothing written.
source "$(dirname "$0")/e2e_lib.sh"
/usr/bin/python3 -c "import numpy, h5py" 2>/dev/null || skip_test "python3-numpy and python3-h5py write and check the arrays"

/usr/bin/python3 - <<'PY' || fail "writing the arrays"
import numpy as np
rng = np.random.default_rng(5)
base = rng.normal(0, 40, size=(37, 4, 3))
for t in ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "g"]:
    for order in "<>":
        dt = np.dtype(t).newbyteorder(order) if np.dtype(t).itemsize > 1 else np.dtype(t)
        v = base
        if t == "?":
            v = base > 0
        elif t[0] == "u":
            v = np.abs(base)
        np.save(f"x_{t}{order}.npy", v.astype(dt))
y = rng.integers(0, 5, size=37)
np.save("y.npy", y.astype(">i8"))
np.save("yf.npy", rng.normal(size=(37, 2)).astype("<f4"))
np.save("xfortran.npy", np.asfortranarray(base.astype("<f4")))
np.savez("plain.npz", features=base, labels=y.astype(np.uint8))
np.savez_compressed("packed.npz", x=base.astype(np.float32), y=y)
np.savez("kerasstyle.npz", x_train=np.abs(base).astype(np.uint8), y_train=y, x_test=np.abs(base[:7]).astype(np.uint8),
         y_test=y[:7])
np.save("complex.npy", base.astype(np.complex64))
with open("cut.npy", "wb") as f:
    f.write(open("x_f8<.npy", "rb").read()[:400])
# the cancer CSVs' shape of data, for the split against import csv
np.savetxt("xs.csv", base.reshape(37, -1), delimiter=",", fmt="%.17g")
np.savetxt("ys.csv", y, fmt="%d")
np.save("xs.npy", base.reshape(37, -1))
np.save("ys.npy", y.astype(np.int32))
PY

# check OUT.h5 EXPR: /train/x equals EXPR (NumPy), bit for bit, in dtype
check() {
  /usr/bin/python3 - "$@" <<'PY'
import h5py, numpy as np, sys
f = h5py.File(sys.argv[1], "r")
want = eval(sys.argv[2])
got = f["train/x"][()]
ok = got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
print(f"{got.dtype} {got.shape}" if ok else f"got {got.dtype} {got.shape}, want {want.dtype} {want.shape}")
sys.exit(0 if ok else 1)
PY
}
for t in "?" i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 g; do
  for order in "<" ">"; do
    f="x_$t$order.npy"
    want="np.load('$f').astype(np.uint8 if np.load('$f').dtype == np.uint8 else np.float32)"
    if "$DPTRAIN" import npy --x "$f" --y y.npy -o "out_$t$order.h5" >/dev/null 2>err.txt; then
      out=$(check "out_$t$order.h5" "$want") && pass "$f ($(/usr/bin/python3 -c "import numpy as np; print(np.load('$f').dtype.str)")): $out, NumPy's values" ||
        fail "$f: $out"
    else
      fail "$f: $(cat err.txt)"
    fi
  done
done
/usr/bin/python3 -c "
import h5py, numpy as np
f = h5py.File('out_f8<.h5', 'r'); y = f['train/y'][()]
assert y.dtype == np.int32 and np.array_equal(y, np.load('y.npy')), y.dtype" && pass "int64 big-endian y: int32 labels" ||
  fail "labels from y.npy"

"$DPTRAIN" import npy --x x_f4\<.npy --y yf.npy -o targets.h5 >/dev/null &&
  /usr/bin/python3 -c "
import h5py, numpy as np
y = h5py.File('targets.h5', 'r')['train/y'][()]
assert y.dtype == np.float32 and np.array_equal(y, np.load('yf.npy'))" && pass "float y (37, 2): float32 targets" ||
  fail "float targets"

"$DPTRAIN" import npy --x xfortran.npy --y y.npy -o fortran.h5 >/dev/null &&
  out=$(check fortran.h5 "np.ascontiguousarray(np.load('xfortran.npy'))") && pass "Fortran order converted: $out" ||
  fail "Fortran order: $out"

"$DPTRAIN" import npy --npz plain.npz --x-key features --y-key labels -o plain.h5 >/dev/null &&
  out=$(check plain.h5 "np.load('plain.npz')['features'].astype(np.float32)") && pass ".npz with --x-key, --y-key: $out" ||
  fail ".npz keys: $out"
"$DPTRAIN" import npy --npz packed.npz -o packed.h5 --test-split 0.25 --seed 3 >/dev/null &&
  "$DPTRAIN" import npy --x x_f4\<.npy --y y.npy -o unpacked.h5 --test-split 0.25 --seed 3 >/dev/null &&
  /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('packed.h5', 'r'), h5py.File('unpacked.h5', 'r')
for k in ('train/x', 'train/y', 'test/x', 'test/y'):
    assert np.array_equal(a[k][()], b[k][()]), k" && pass "compressed .npz split as the same arrays in .npy files" ||
  fail "compressed .npz"
out=$("$DPTRAIN" import npy --npz kerasstyle.npz -o kerasstyle.h5) &&
  /usr/bin/python3 -c "
import h5py, numpy as np
f, z = h5py.File('kerasstyle.h5', 'r'), np.load('kerasstyle.npz')
for g in ('train', 'test'):
    assert f[g + '/x'].dtype == np.uint8 and np.array_equal(f[g + '/x'][()], z['x_' + g]), g
    assert np.array_equal(f[g + '/y'][()], z['y_' + g]), g" && pass "Keras' x_train/x_test .npz: its own split, uint8 kept ($out)" ||
  fail "x_train/x_test .npz: $out"

# --test-split: the rows of import csv (scikit-learn's train_test_split, checked in e2e_cli_errors)
"$DPTRAIN" import csv --x xs.csv --y ys.csv -o fromcsv.h5 --test-split 0.3 --seed 7 >/dev/null &&
  "$DPTRAIN" import npy --x xs.npy --y ys.npy -o fromnpy.h5 --test-split 0.3 --seed 7 >/dev/null &&
  /usr/bin/python3 -c "
import h5py, numpy as np
a, b = h5py.File('fromcsv.h5', 'r'), h5py.File('fromnpy.h5', 'r')
for k in ('train/x', 'train/y', 'test/x', 'test/y'):
    assert np.array_equal(a[k][()], b[k][()]), k" && pass "--test-split 0.3 --seed 7: the rows import csv picks" ||
  fail "split differs from import csv"

# Bounded memory: a 256 MB float64 x (2 M rows of 16) imports, split or not, in far less
peak_kb() { # COMMAND...: peak RSS of the command in kB
  /usr/bin/python3 -c "
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)" "$@"
}
/usr/bin/python3 -c "
import numpy as np
x = np.lib.format.open_memmap('big.npy', mode='w+', dtype='<f8', shape=(2_000_000, 16))
for i in range(0, 2_000_000, 250_000):
    x[i:i + 250_000] = np.arange(i, i + 250_000)[:, None] * 0.5
x.flush()
np.save('bigy.npy', (np.arange(2_000_000) % 3).astype(np.int8))"
# (dptrain's start-up alone, MPI and OpenBLAS, is the baseline: a 37-row import)
base=$(peak_kb "$DPTRAIN" import npy --x x_f8\<.npy --y y.npy -o small.h5)
for split in "" "--test-split 0.2"; do
  kb=$(peak_kb "$DPTRAIN" import npy --x big.npy --y bigy.npy -o big.h5 $split)
  [ "$kb" -gt 0 ] && [ $((kb - base)) -lt 65536 ] &&
    pass "256 MB of float64 rows ${split:-in order}: peak RSS $((kb / 1024)) MB, $(((kb - base) / 1024)) MB above a 37-row import's" ||
    fail "big import ${split:-in order}: peak RSS ${kb} kB, a 37-row import ${base} kB"
  rm -f big.h5
done

expect_error 2 "cut.npy: truncated: the header promises 37 rows" "$DPTRAIN" import npy --x cut.npy --y y.npy -o bad1.h5
expect_error 2 "complex.npy: complex numbers (dtype '<c8') cannot be features" "$DPTRAIN" import npy --x complex.npy --y y.npy -o bad2.h5
expect_error 2 "plain.npz: no array 'x' (it holds features.npy, labels.npy)" "$DPTRAIN" import npy --npz plain.npz -o bad3.h5
expect_error 2 "xs.csv: not a NumPy .npy array" "$DPTRAIN" import npy --x xs.csv --y y.npy -o bad4.h5
expect_error 2 "big.npy has 2000000 rows but yf.npy has 37" "$DPTRAIN" import npy --x big.npy --y yf.npy -o bad5.h5
[ -z "$(ls bad?.h5 2>/dev/null)" ] && pass "refused imports wrote nothing" || fail "refused imports left $(ls bad?.h5)"
finish
