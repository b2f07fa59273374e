#!/usr/bin/env bash
# Installs what dptrain needs (Debian/Ubuntu packages, only those missing; needs root for that),
# then configures and builds into build/. Safe to run again: it skips what is already done.
#   tools/setup.sh              install + build (Release)
#   DPTRAIN_BUILD_TYPE=Debug tools/setup.sh
#   DPTRAIN_CMAKE_ARGS="-DDPTRAIN_SANITIZE=ON" tools/setup.sh
#   DPTRAIN_EXTRA_PACKAGES="lmod" tools/setup.sh      (more Debian packages, e.g. for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools check
          libopenblas-dev libconfig-dev libjansson-dev libzip-dev libdnnl-dev zlib1g-dev gnuplot-nox python3-h5py python3-numpy python3-sklearn python3-pil libpng-dev libjpeg-dev
          ${DPTRAIN_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
fi

jobs=$(nproc 2>/dev/null || echo 2)
# shellcheck disable=SC2086
cmake -S . -B build -DCMAKE_BUILD_TYPE="${DPTRAIN_BUILD_TYPE:-Release}" ${DPTRAIN_CMAKE_ARGS:-} >build-configure.log 2>&1 ||
  { cat build-configure.log >&2; exit 1; }
rm -f build-configure.log
# The build's own exit status decides: a stale build/dptrain from an earlier build must not pass.
tools/build-dir.sh build
test -x build/dptrain || { echo "setup: build/dptrain missing after the build" >&2; exit 1; }
echo "setup: built build/dptrain ($(build/dptrain --version))"
