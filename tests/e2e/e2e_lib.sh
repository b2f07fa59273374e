# Helpers for the end-to-end tests: sourced with $1 = dptrain binary, $2 = source tree.
set -u
DPTRAIN=$(realpath "$1")
SRC=$(realpath "$2")
DATA=${DPTRAIN_DATA:-$SRC/../shared/data}
WORK=$(mktemp -d /tmp/dptrain-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# The verdicts are counted in files, not shell variables, so that a check made inside $( ) or a
# pipeline (a subshell) still counts; and they are printed on the test's own output (fd 3), so that
# they never become part of a value that $( ) captures.
: >"$WORK/.passes"
: >"$WORK/.failures"
exec 3>&1
fail() { echo "FAIL: $*" >&3; echo x >>"$WORK/.failures"; }
pass() { echo "ok: $*" >&3; echo x >>"$WORK/.passes"; }

# is_number VALUE: VALUE is a decimal number (awk compares anything else as text: "FAIL" >= 0.9).
is_number() { [[ $1 =~ ^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; }
# holds VALUE CONDITION: VALUE is a number and the awk CONDITION on v is true: holds "$acc" 'v >= 0.9'
holds() { is_number "$1" && awk -v v="$1" "BEGIN { exit !($2) }"; }

# Under CI (CI=true, set by .ci/run) every test and every part of one is meant to run: a skip
# would leave CI green without having checked anything, so it fails instead, saying why.
# skip_test REASON: skips the whole test (exit 77), or fails it under CI.
skip_test() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL: CI=true and this test would be skipped: $*" >&3
    exit 1
  fi
  echo "SKIP: $*" >&3
  exit 77
}
# skip_part REASON: a part of a test that cannot run here; said, and a failure under CI.
skip_part() {
  if [ "${CI:-}" = true ]; then fail "CI=true and a part would be skipped: $*"
  else echo "note: skipped: $*" >&3; fi
}
have_h5py() { /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null; }
# keras_io_h5 MODEL OUT.h5: the inputs Keras predicted on ($DATA/keras/MODEL_io.h5) as a data set
# (/train and /test; labels or targets from Keras' predictions, which predict does not read)
keras_io_h5() {
  /usr/bin/python3 - "$DATA/keras/$1_io.h5" "$2" <<'PY'
import h5py, numpy as np, sys
src = h5py.File(sys.argv[1], "r")
x, y = src["x"][()], src["y"][()]
with h5py.File(sys.argv[2], "w") as f:
    for g in ("train", "test"):
        f[g + "/x"] = x
        f[g + "/y"] = np.argmax(y, 1).astype(np.int32) if y.shape[1] > 1 else y
PY
}

# expect_error CODE NEEDLE CMD...: the command exits with CODE and prints exactly one line on
# stderr that contains NEEDLE.
expect_error() {
  local code=$1 needle=$2
  shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  local lines
  lines=$(wc -l <err.txt)
  if [ "$rc" -ne "$code" ]; then
    fail "'$*' exited $rc, expected $code; stderr: $(head -c 300 err.txt)"
  elif ! grep -qF -- "$needle" err.txt; then
    fail "'$*' stderr lacks '$needle': $(head -c 300 err.txt)"
  elif [ "$lines" -ne 1 ]; then
    fail "'$*' printed $lines lines on stderr, expected one: $(head -c 300 err.txt)"
  else
    pass "$needle"
  fi
}

# same_weights A.h5 B.h5: the weights of every layer named in the caller's array `layers` are
# bit-identical.
same_weights() {
  local l
  for l in "${layers[@]}"; do
    h5diff -q "$1" "$2" "/$l" "/$l" >/dev/null 2>&1 || return 1
  done
}

need_data() {
  [ -f "$DATA/$1" ] || skip_test "$DATA/$1 not found (set DPTRAIN_DATA to the shared data directory)"
}

# make_dep_modules MODULEFILE DIR: stand-ins in DIR for the modules that MODULEFILE depends_on (the
# site's cuda/openmpi/hdf5), so Lmod has something to load; prints their names.
make_dep_modules() {
  local d deps
  deps=$(grep -o 'depends_on("[^"]*")' "$1" | sed 's/depends_on("\(.*\)")/\1/')
  for d in $deps; do
    mkdir -p "$2/$(dirname "$d")"
    printf 'setenv("FAKE_DEP_%s", "1")\n' "$(basename "$d" | tr -c 'A-Za-z0-9\n' _)" >"$2/$d.lua"
  done
  echo $deps
}

# check_profile OUTPUT LAYER...: `dptrain bench --profile` printed its JSON line first, then a row
# for each named layer (forward and backward ms), the upload, loss and optimizer rows, and a sum
# that is the rows' total (within the rounding of 4 decimals).
check_profile() {
  local out=$1
  shift
  head -1 "$out" | grep -q '"ms_per_step"' || { fail "bench --profile: the JSON line is not first: $(head -1 "$out")"; return; }
  local layer
  for layer in "$@"; do
    grep -Eq "^$layer +[0-9.]+ +[0-9.]+$" "$out" || { fail "bench --profile: no row for $layer: $(cat "$out")"; return; }
  done
  awk -v n=$# '
    /^(input upload|loss \(forward and gradient\)|optimizer) / { s += $NF; parts++ }
    NF == 3 && $2 ~ /^[0-9.]+$/ && $3 ~ /^[0-9.]+$/ { s += $2 + $3; layers++ }
    /^sum of the parts/ { sum = $5 }
    END { d = s - sum; if (d < 0) d = -d
          exit !(parts == 3 && layers == n && sum > 0 && d <= 1e-4 * (n * 2 + 3)) }' "$out" &&
    pass "bench --profile: $# layers, upload, loss, optimizer; $(grep '^sum of the parts' "$out" | tr -s ' ')" ||
    fail "bench --profile: the rows do not add up to the sum: $(cat "$out")"
}

finish() {
  local passes failures
  passes=$(wc -l <"$WORK/.passes")
  failures=$(wc -l <"$WORK/.failures")
  echo "$passes passed, $failures failed" >&3
  if [ "$passes" -eq 0 ] && [ "$failures" -eq 0 ]; then
    echo "FAIL: no check ran" >&3
    exit 1
  fi
  [ "$failures" -eq 0 ]
  exit $?
}
