#!/usr/bin/env bash
# Builds a configured build folder: tools/build-dir.sh DIR [cmake --build arguments...]
# Prints the compiler's warnings and errors; fails (exit 1, naming the full log) when the build
# fails, so that a stale binary left by an earlier build never passes for a fresh one.
set -uo pipefail
dir=$1
shift
log="$dir/build.log"
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" "$@" >"$log" 2>&1
rc=$?
grep -E "warning:|error:|Error [0-9]" "$log" >&2
if [ $rc -ne 0 ]; then
  echo "build of $dir failed (exit $rc); the whole log: $log" >&2
  exit 1
fi
exit 0
