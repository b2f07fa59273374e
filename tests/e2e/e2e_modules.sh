#!/usr/bin/env bash
# `cmake --install` writes Lmod and Tcl modulefiles with the real prefix; with Debian's Lmod,
# `module load dptrain` puts that dptrain on PATH (and its man page on MANPATH), loads the modules
# it depends on, and `module unload dptrain` restores PATH and unloads them again.
source "$(dirname "$0")/e2e_lib.sh"
LMOD_INIT=/usr/share/lmod/lmod/init/bash
if [ ! -r "$LMOD_INIT" ]; then
  skip_test "Lmod is not installed (apt-get install lmod; tools/test.sh does)"
fi
BUILD=$(dirname "$DPTRAIN")
PREFIX="$WORK/prefix with space"
cmake --install "$BUILD" --prefix "$PREFIX" >install.log 2>&1 || { fail "cmake --install: $(tail -3 install.log)"; finish; }
VERSION=$("$DPTRAIN" --version | awk 'NR == 1 {print $NF}')
[ -f "$PREFIX/modulefiles/dptrain/$VERSION.lua" ] && [ -f "$PREFIX/modulefiles-tcl/dptrain/$VERSION" ] &&
  pass "modulefiles installed (lua and tcl)" || fail "modulefiles missing: $(ls -R "$PREFIX" | head -20)"
[ -f "$PREFIX/share/man/man1/dptrain.1" ] && pass "man page installed" || fail "no man page"
grep -q "\.TH DPTRAIN 1 .*dptrain $VERSION" "$PREFIX/share/man/man1/dptrain.1" && pass "man page carries the version" ||
  fail "man page header: $(head -1 "$PREFIX/share/man/man1/dptrain.1")"
[ -f "$PREFIX/share/dptrain/jobs/dptrain.sbatch" ] && pass "templates installed" || fail "templates missing"

# Stand-ins for the site's cuda/openmpi/hdf5 modules, so depends_on has something to load.
deps=$(make_dep_modules "$PREFIX/modulefiles/dptrain/$VERSION.lua" deps)

check_flavour() { # check_flavour NAME PREFIX MODULEPATH-DIR
  local name=$1 PREFIX=$2 dir=$3
  ( set +u
    # Lmod drops duplicate PATH entries when it edits PATH; start from a PATH without any.
    PATH=$(printf %s "$PATH" | awk -v RS=: '!seen[$0]++' | paste -sd:)
    source "$LMOD_INIT"
    module purge >/dev/null 2>&1
    module use "$WORK/deps"
    module use "$dir"
    before=$PATH
    module load dptrain 2>load.err || { echo "FAIL: $name: module load dptrain: $(cat load.err)"; exit 1; }
    [ "$(command -v dptrain)" = "$PREFIX/bin/dptrain" ] || { echo "FAIL: $name: dptrain is $(command -v dptrain)"; exit 1; }
    [ "$DPTRAIN_HOME" = "$PREFIX" ] || { echo "FAIL: $name: DPTRAIN_HOME=$DPTRAIN_HOME"; exit 1; }
    case ":$MANPATH:" in *":$PREFIX/share/man:"*) ;; *) echo "FAIL: $name: MANPATH=$MANPATH"; exit 1 ;; esac
    dptrain --version >/dev/null || { echo "FAIL: $name: the loaded dptrain does not run"; exit 1; }
    for d in $deps; do
      module is-loaded "$d" || { echo "FAIL: $name: dependency $d not loaded"; exit 1; }
    done
    module help dptrain 2>&1 | grep -q "data-parallel training" || { echo "FAIL: $name: module help"; exit 1; }
    module whatis dptrain 2>&1 | grep -q "Version: $VERSION" || { echo "FAIL: $name: module whatis"; exit 1; }
    module unload dptrain
    [ "$PATH" = "$before" ] || { echo "FAIL: $name: PATH after unload differs: $PATH vs $before"; exit 1; }
    [ -z "${DPTRAIN_HOME:-}" ] || { echo "FAIL: $name: DPTRAIN_HOME still set"; exit 1; }
    for d in $deps; do
      ! module is-loaded "$d" || { echo "FAIL: $name: dependency $d still loaded after unload"; exit 1; }
    done
    echo "ok"
  ) >"$name.log" 2>&1
  if grep -qx ok "$name.log"; then
    pass "$name: module load puts $PREFIX/bin/dptrain on PATH with its deps ($deps); unload restores PATH"
  else
    fail "$(grep FAIL "$name.log" || tail -3 "$name.log")"
  fi
}
check_flavour lmod-lua "$PREFIX" "$PREFIX/modulefiles"
# Lmod's Tcl bridge cannot take a modulefile path with a space in it: a second prefix without one.
PREFIX2="$WORK/prefix2"
cmake --install "$BUILD" --prefix "$PREFIX2" >install2.log 2>&1 || fail "cmake --install (2): $(tail -3 install2.log)"
check_flavour lmod-tcl "$PREFIX2" "$PREFIX2/modulefiles-tcl"
finish
