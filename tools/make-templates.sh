#!/usr/bin/env bash
# Regenerates the batch templates in jobs/ from the generator, so they never drift from it:
#   jobs/dptrain.sbatch      generic: sbatch jobs/dptrain.sbatch JOB.cfg [--set KEY=VALUE ...]
#   jobs/<name>.sbatch       one per example job (sbatch jobs/seed_mlp.sbatch)
# Usage: tools/make-templates.sh [path/to/dptrain]     (tests/e2e/e2e_sbatch.sh checks they are current)
set -euo pipefail
cd "$(dirname "$0")/.."
DPTRAIN=${1:-build/dptrain}
"$DPTRAIN" sbatch --generic -o jobs/dptrain.sbatch
for job in seed_mlp cancer_mlp mnist_cnn; do
  "$DPTRAIN" sbatch "jobs/$job.cfg" -o "jobs/$job.sbatch"
done
