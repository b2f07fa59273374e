#!/usr/bin/env bash
# Sets up (when needed), builds and runs every test: Check unit tests and end-to-end tests.
# The example data is found at $DPTRAIN_DATA (default ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir build --output-on-failure "$@"
