#!/usr/bin/env bash
# Re-measures the test suite's strength: puts a handful of known faults, one at a time, into a
# scratch copy of the working tree (a changed line of code, or a dptrain whose fits fail), and
# checks that the test meant to notice each one passes without the fault and fails with it.
# Prints a table; exit status 1 when a fault goes unnoticed or a test fails without one.
#   tools/mutation-check.sh              every fault (about 5 minutes on 2 cores)
#   tools/mutation-check.sh NAME...      only these (names as in the table)
# Needs what tools/test.sh installs; the cancer data from $DPTRAIN_DATA (default ../shared/data).
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export DPTRAIN_DATA=${DPTRAIN_DATA:-$src/../shared/data}
export ASAN_OPTIONS=detect_leaks=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
scratch=$(mktemp -d /tmp/dptrain-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
(cd "$src" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$scratch"
B=$scratch/build
echo "scratch copy: $scratch; building (CUDA off: the kernels of cuda/ run on the emulated device)"
cmake -S "$scratch" -B "$B" -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=OFF >"$scratch/configure.log" 2>&1 &&
  cmake --build "$B" -j "$(nproc)" --target dptrain test_data test_optimizers test_cuda_emulated >"$scratch/build.log" 2>&1 ||
  { tail -20 "$scratch/build.log"; exit 1; }

# A dptrain whose fits of seeds 3 and 4 fail, as a crashed or killed fit would.
cat >"$scratch/failing-fits" <<EOF
#!/usr/bin/env bash
case " \$* " in *" fit.seed=3 "*|*" fit.seed=4 "*) echo "injected failure" >&2; exit 1 ;; esac
exec "$B/dptrain" "\$@"
EOF
chmod +x "$scratch/failing-fits"

rows=()
unnoticed=0
selected() { [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }
only=("$@")
# record NAME WHAT TEST CLEAN_RC FAULTY_RC: one row of the table
record() {
  local verdict="caught"
  if [ "$4" -ne 0 ]; then verdict="TEST FAILS WITHOUT THE FAULT"; unnoticed=$((unnoticed + 1))
  elif [ "$5" -eq 0 ]; then verdict="NOT CAUGHT"; unnoticed=$((unnoticed + 1)); fi
  rows+=("$(printf '| %-18s | %-62s | %-26s | %s |' "$1" "$2" "$3" "$verdict")")
  echo "$1: $verdict (exit $4 without the fault, $5 with it)"
  if [ "$4" -ne 0 ]; then grep -E "FAIL|note" "$scratch/$1.clean.log" | head -20 || tail -5 "$scratch/$1.clean.log"; fi
}
# replace FILE FROM TO: FROM (a literal line part, found exactly once) becomes TO
replace() {
  python3 - "$@" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: the mutation's text occurs {text.count(old)} times, not once")
open(path, "w").write(text.replace(old, new))
PY
}
# mutant NAME WHAT FILE FROM TO TARGET TESTNAME CMD...: the test CMD passes on the clean copy and
# fails once FROM is replaced by TO in FILE (TARGET rebuilt); the file is restored afterwards.
mutant() {
  local name=$1 what=$2 file=$scratch/$3 from=$4 to=$5 target=$6 test=$7
  shift 7
  selected "$name" || return 0
  cp "$file" "$file.orig"
  cmake --build "$B" --target "$target" >>"$scratch/build.log" 2>&1 || { echo "$name: clean build failed"; exit 1; }
  "$@" >"$scratch/$name.clean.log" 2>&1
  local clean=$?
  replace "$file" "$from" "$to" || exit 1
  if cmake --build "$B" --target "$target" >>"$scratch/build.log" 2>&1; then
    timeout 600 "$@" >"$scratch/$name.faulty.log" 2>&1
    faulty=$?
  else
    echo "$name: the mutant does not build"; faulty=0
  fi
  mv "$file.orig" "$file"
  touch "$file" # newer than the mutant's objects, so the next build compiles it again
  record "$name" "$what" "$test" "$clean" "$faulty"
}

mutant bce-gradient-sign "device binary cross-entropy gradient with its sign flipped" \
  cuda/loss.cu 'dz[r * k + j] = (float)(((double)yr[j] - tt) / (double)k) * scale;' \
  'dz[r * k + j] = (float)((tt - (double)yr[j]) / (double)k) * scale;' test_cuda_emulated unit_cuda_emulated "$B/tests/test_cuda_emulated"
mutant tf32-ignored "tf32 asked, fp32 computed" \
  cuda/gemm.cu '{CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32,' '{CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F,' \
  test_cuda_emulated unit_cuda_emulated "$B/tests/test_cuda_emulated"
mutant conv-last-row "device convolution forward skips its last output row (valid)" \
  cuda/conv_pool.cu 'cuda_dense_forward(z, cols, w, b, rows * g->out_h * g->out_w, g->k_h' \
  'cuda_dense_forward(z, cols, w, b, rows * g->out_h * g->out_w - (g->pad_top == 0), g->k_h' \
  test_cuda_emulated unit_cuda_emulated "$B/tests/test_cuda_emulated"
mutant copy-direction "upload declared as a device-to-host copy" \
  cuda/device_memory.cu 'CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice))' \
  'CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost))' test_cuda_emulated unit_cuda_emulated "$B/tests/test_cuda_emulated"
mutant windows-unshuffled "streamed data shuffled within windows only (blocks never move)" \
  src/data/batch_reader.c 'if (r->shuffle && r->nwindows > 1)' 'if (r->shuffle && r->nwindows > 1 && 0)' \
  test_data unit_data "$B/tests/test_data"
mutant adam-no-epsilon "Adam without its epsilon" \
  src/net/backend_cpu.c 'w[i] -= lr * m / (sqrtf(v) + eps);' 'w[i] -= lr * m / sqrtf(v);' \
  test_optimizers unit_optimizers "$B/tests/test_optimizers"
mutant rmsprop-epsilon "RMSprop with sqrt(v) + eps instead of Keras' sqrt(v + eps)" \
  src/net/backend_cpu.c 'w[i] -= lr * g[i] / sqrtf(v + eps);' 'w[i] -= lr * g[i] / (sqrtf(v) + eps);' \
  test_optimizers unit_optimizers "$B/tests/test_optimizers"
mutant checkpoint-field "checkpoint stores early stopping's wait as best_epoch" \
  src/train/weights_file.c '{"best_epoch", 1, offsetof(struct train_position, best_epoch),' \
  '{"best_epoch", 1, offsetof(struct train_position, wait),' test_data unit_data "$B/tests/test_data"
mutant weak-csv-empty "report scaling writes weak scaling's CSV without rows" \
  src/cmd/cmd_report.c 'fprintf(csv, "%g,%.17g,%.17g,%.17g,%.17g,%.6f,%.6f,%.6f\n", r->ranks' \
  'if (strong) fprintf(csv, "%g,%.17g,%.17g,%.17g,%.17g,%.6f,%.6f,%.6f\n", r->ranks' \
  dptrain e2e_scaling bash "$scratch/tests/e2e/e2e_scaling.sh" "$B/dptrain" "$scratch"
mutant resume-restarts "--resume auto starts over instead of resuming" \
  src/train/trainer.c '    if (!o->resume)' '    if (1)' dptrain e2e_resume bash "$scratch/tests/e2e/e2e_resume.sh" "$B/dptrain" "$scratch"

if selected failing-fits; then
  bash "$scratch/tests/e2e/e2e_cancer_accuracy.sh" "$B/dptrain" "$scratch" >"$scratch/failing-fits.clean.log" 2>&1
  clean=$?
  bash "$scratch/tests/e2e/e2e_cancer_accuracy.sh" "$scratch/failing-fits" "$scratch" >"$scratch/failing-fits.faulty.log" 2>&1
  record failing-fits "the fits of cancer seeds 3 and 4 fail" e2e_cancer_accuracy $clean $?
fi
if selected nan-weights; then
  # a checkpoint, and the same with one weight NaN: compare_weights.py must not call them equal
  (cd "$scratch" && "$B/dptrain" synth --rows 500 --features 4 -o n.h5 >/dev/null &&
   printf 'data = { file = "n.h5"; };\nmodel = ( { type = "dense"; units = 1; } );\nfit = { epochs = 1; loss = "mse"; };\n' >n.cfg &&
   "$B/dptrain" fit n.cfg --run-dir n >/dev/null && cp n/last.h5 nan.h5 &&
   /usr/bin/python3 -c 'import h5py, sys; f = h5py.File("nan.h5", "r+"); f["dense/dense/kernel:0"][0, 0] = float("nan")')
  /usr/bin/python3 "$scratch/tests/e2e/compare_weights.py" "$scratch/n/last.h5" "$scratch/n/last.h5" 0 >/dev/null 2>&1
  clean=$?
  /usr/bin/python3 "$scratch/tests/e2e/compare_weights.py" "$scratch/n/last.h5" "$scratch/nan.h5" 1 >/dev/null 2>&1
  record nan-weights "a NaN weight compared with tolerance 1" compare_weights.py $clean $?
fi

echo
echo "| fault              | what                                                           | test                       | verdict |"
echo "|--------------------|----------------------------------------------------------------|----------------------------|---------|"
printf '%s\n' "${rows[@]}"
[ "$unnoticed" -eq 0 ]
