# Helpers for the end-to-end tests: sourced with $1 = dptrain binary, $2 = source tree.
set -u
DPTRAIN=$(realpath "$1")
SRC=$(realpath "$2")
DATA=${DPTRAIN_DATA:-$SRC/../shared/data}
WORK=$(mktemp -d /tmp/dptrain-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0
passes=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; passes=$((passes + 1)); }

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

need_data() {
  if [ ! -f "$DATA/$1" ]; then
    echo "SKIP: $DATA/$1 not found (set DPTRAIN_DATA to the shared data directory)"
    exit 77
  fi
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

finish() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
  exit $?
}
