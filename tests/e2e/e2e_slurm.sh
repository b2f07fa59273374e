#!/usr/bin/env bash
# Against a real single-node Slurm (Debian's slurm-wlm 22.05 + munge, started by
# tests/slurm/start-slurm.sh; 2 fake GPUs, partitions gpu and cpu, feature gpupod), with dptrain
# installed by `cmake --install` and loaded by the batch scripts through Lmod:
#   1. a job with --time 2 and --signal 60 s before the limit is checkpointed, requeues itself,
#      resumes from last.h5 and ends with the same weights as an uninterrupted run;
#   2. the generated cancer_mlp script (dptrain sbatch --submit) trains with 2 ranks on the 2 (fake)
#      GPUs of the node;
#   3. the installed generic template trains a small seed_mlp job (job file found via DPTRAIN_HOME);
#   4. a job-array sweep over 1 and 2 ranks (tools/scaling-sweep --slurm) feeds `dptrain report scaling`.
# Needs root (it starts the daemons); skips elsewhere. Takes about 3 minutes on 2 cores.
source "$(dirname "$0")/e2e_lib.sh"
if [ "$(id -u)" != 0 ]; then
  skip_test "starting a local Slurm cluster needs root"
fi
SLURM_TOOLS=$SRC/tests/slurm
started_here=0
scontrol ping 2>/dev/null | grep -q "is UP" || started_here=1
if ! bash "$SLURM_TOOLS/start-slurm.sh" >start.log 2>&1; then
  skip_test "could not start the local Slurm cluster: $(tail -n 3 start.log)"
fi
cleanup() {
  scancel --name=requeue_mlp,cancer_mlp,seed_small,sweep >/dev/null 2>&1
  [ "$started_here" = 1 ] && bash "$SLURM_TOOLS/stop-slurm.sh" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
pass "Slurm is up: $(sinfo -h -o '%P %D %G %f' | tr '\n' ' ')"

# dptrain installed as a site would, reached through its module when Lmod is there, else PATH.
BUILD=$(dirname "$DPTRAIN")
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >install.log 2>&1 || { fail "cmake --install: $(tail -n 3 install.log)"; finish; }
D=$PREFIX/bin/dptrain
if [ -r /usr/share/lmod/lmod/init/bash ]; then
  set +u
  source /usr/share/lmod/lmod/init/bash # exports the module function to the batch shells
  set -u
  make_dep_modules "$PREFIX"/modulefiles/dptrain/*.lua "$WORK/deps" >/dev/null
  module use "$WORK/deps"
  module use "$PREFIX/modulefiles"
  via="module dptrain"
else
  export PATH=$PREFIX/bin:$PATH
  via="PATH (no Lmod)"
fi
SITE=$SLURM_TOOLS/localci-site.cfg

state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
# wait_jobs SECONDS ID...: until none of the jobs is pending, running or being requeued
wait_jobs() {
  local limit=$1 t=0
  shift
  while [ $t -lt "$limit" ]; do
    [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" 2>/dev/null)" ] && return 0
    sleep 3
    t=$((t + 3))
  done
  return 1
}
submit() { sbatch --parsable "$@" | cut -d';' -f1; }

# The requeue job: a narrower seed_mlp, one thread, sized from a short calibration so that one
# uninterrupted run takes about 90 s (the signal comes 37-48 s after the start on this cluster).
small=(--set fit.threads=1 --set model.[1].units=1024 --set model.[3].units=1024 --set model.[4].units=1024
       --set model.[5].units=1024)
"$D" fit "$SRC/jobs/seed_mlp.cfg" "${small[@]}" --set data.synthetic.rows=12288 --run-dir cal --progress lines \
  >cal.log 2>&1 || fail "calibration run: $(tail -2 cal.log)"
step=$(grep -o '"steady_step_seconds": [0-9.e-]*' cal/summary.json | awk '{print $2}')
steps=$(awk -v s="$step" 'BEGIN { n = int(90 / s); print (n < 100 ? 100 : n) }')
rq=("${small[@]}" --set name=requeue_mlp --set data.synthetic.rows=$((steps * 1024)))
echo "calibration: $step s/step -> $steps steps"
"$D" sbatch "$SRC/jobs/seed_mlp.cfg" --site "$SITE" --gpus-per-node 1 --time 2 "${rq[@]}" -o requeue.sbatch >/dev/null
grep -qxF "#SBATCH --signal=B:USR1@60" requeue.sbatch || fail "requeue script lacks the signal line"
t0=$(date +%s)
id_rq=$(submit requeue.sbatch) || fail "sbatch requeue.sbatch"
# The uninterrupted reference, beside it.
"$D" fit "$SRC/jobs/seed_mlp.cfg" "${rq[@]}" --run-dir straight --progress lines >straight.log 2>&1 &
ref_pid=$!

# cancer_mlp on both fake GPUs: 2 ranks through srun --mpi=pmix.
ids=("$id_rq")
if [ -f "$DATA/cancer/cancer_data.csv" ]; then
  "$D" import csv --x "$DATA/cancer/cancer_data.csv" --y "$DATA/cancer/cancer_target.csv" -o cancer.h5 \
    --test-split 0.3 --seed 7 >import.log 2>&1 || fail "import csv: $(tail -2 import.log)"
  "$D" sbatch "$SRC/jobs/cancer_mlp.cfg" --site "$SITE" --time 10 --submit >cancer.submit 2>&1 ||
    fail "dptrain sbatch --submit: $(cat cancer.submit)"
  id_cancer=$(awk '/Submitted batch job/ {print $4}' cancer.submit)
  [ -n "$id_cancer" ] && ids+=("$id_cancer") || fail "no job id from --submit: $(cat cancer.submit)"
else
  skip_part "$DATA/cancer not found: the cancer_mlp job under Slurm"
  id_cancer=
fi
# The installed generic template, with the job named as in the source tree (found via DPTRAIN_HOME).
id_seed=$(submit -J seed_small -p gpu --gres=gpu:fake:1 --ntasks-per-node=1 --cpus-per-task=1 -C gpupod \
  "$PREFIX/share/dptrain/jobs/dptrain.sbatch" jobs/seed_mlp.cfg --set name=seed_small \
  --set data.synthetic.rows=2048) && ids+=("$id_seed") || fail "sbatch dptrain.sbatch"
# A strong-scaling sweep over 1 and 2 CPU ranks as a job array (tools/scaling-sweep --slurm).
DPTRAIN=$D "$SRC/tools/scaling-sweep" "$SRC/jobs/seed_mlp.cfg" --ranks 1,2 --steps 8 --out sweep "${small[@]}" \
  --set name=sweep --set data.synthetic.rows=8192 \
  --slurm "--site '$SITE' --cpu --ranks-per-node 2 --time 10" >sweep.out 2>sweep.err || fail "scaling-sweep --slurm: $(cat sweep.err)"
id_sweep=$(awk '/Submitted batch job/ {print $4}' sweep.out)
[ -n "$id_sweep" ] && ids+=("$id_sweep") || fail "no array job submitted: $(cat sweep.out sweep.err)"

wait_jobs 420 "${ids[@]}" || fail "jobs still queued after 420 s: $(squeue -h)"
wait $ref_pid || fail "uninterrupted reference run: $(tail -2 straight.log)"
echo "all jobs ended after $(( $(date +%s) - t0 )) s"

# 1. preemption: signal -> checkpoint -> requeue -> resume -> same weights
log=requeue_mlp-$id_rq.out
[ "$(state "$id_rq")" = COMPLETED ] && pass "requeue job $id_rq COMPLETED" ||
  fail "requeue job state $(state "$id_rq"): $(tail -n 5 "$log" requeue_mlp-$id_rq.err 2>&1)"
restarts=$(scontrol show job -o "$id_rq" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
grep -q "SLURM_RESTART_COUNT=0" "$log" && grep -q "signal received" "$log" && grep -q "checkpointed; requeueing" "$log" &&
  grep -q "SLURM_RESTART_COUNT=1" "$log" && grep -q "^Resumed from .*last.h5" "$log" &&
  pass "signalled, checkpointed, requeued ($restarts restarts) and resumed: $(grep -E 'signal received|SLURM_RESTART_COUNT' "$log" | tr '\n' ' ')" ||
  fail "requeue sequence not in the log: $(grep -E '^dptrain:|Resumed' "$log" | head -12)"
grep -q "^Binding" "$log" || true
same=1
for l in dense dense_1 dense_2 dense_3 dense_4 dense_5; do
  h5diff -q runs/requeue_mlp/last.h5 straight/last.h5 "/$l" "/$l" >/dev/null 2>&1 || same=0
done
[ $same = 1 ] && pass "requeued run ends with the same weights as the uninterrupted run (bit for bit)" ||
  fail "weights after requeue differ from the uninterrupted run"

# 2. cancer_mlp, 2 ranks on the node's 2 GPUs
if [ -n "$id_cancer" ]; then
  log=cancer_mlp-$id_cancer.out
  [ "$(state "$id_cancer")" = COMPLETED ] && pass "cancer_mlp job COMPLETED" ||
    fail "cancer_mlp state $(state "$id_cancer"): $(tail -n 5 cancer_mlp-$id_cancer.err)"
  grep -q '"ranks": 2' runs/cancer_mlp/summary.json && grep -q "\"slurm_job_id\": \"$id_cancer\"" runs/cancer_mlp/summary.json &&
    pass "summary.json: 2 ranks, Slurm job $id_cancer" || fail "cancer summary: $(grep -E 'ranks|slurm' runs/cancer_mlp/summary.json)"
  rows=$(grep -cE '^  [01] +[^ ]+ +[01] \((SLURM_LOCALID|OMPI_COMM_WORLD_LOCAL_RANK)\) +0,1 ' "$log")
  [ "$rows" = 2 ] && pass "binding table: ranks 0 and 1, local ranks from the launcher, CUDA_VISIBLE_DEVICES=0,1" ||
    fail "binding table: $(grep -A3 '^Binding' "$log")"
  "$D" evaluate "$SRC/jobs/cancer_mlp.cfg" --weights runs/cancer_mlp/best.h5 --json >eval.json 2>eval.err ||
    fail "evaluate: $(cat eval.err)"
  acc=$(grep -o '"accuracy": [0-9.]*' eval.json | awk '{print $2}')
  holds "$acc" 'v >= 0.85' && pass "cancer_mlp trained under Slurm: test accuracy $acc" ||
    fail "cancer_mlp test accuracy $acc"
fi

# 3. generic template through the module
log=seed_small-$id_seed.out
[ "$(state "$id_seed")" = COMPLETED ] && grep -q "\"steps\": 2" runs/seed_small/summary.json &&
  pass "generic template ran jobs/seed_mlp.cfg from DPTRAIN_HOME via $via: $(grep '^dptrain: /' "$log")" ||
  fail "generic template job: $(state "$id_seed") $(tail -n 3 "$log" seed_small-$id_seed.err 2>&1)"
grep -q "^dptrain: $PREFIX/bin/dptrain " "$log" && pass "the batch script ran the installed dptrain" ||
  fail "dptrain used by the batch script: $(grep '^dptrain: /' "$log")"

# 4. job-array sweep -> scaling report
ok=1
for t in 0 1; do
  [ "$(state "${id_sweep}_$t")" = COMPLETED ] || ok=0
done
[ $ok = 1 ] && grep -q '"slurm_array_task_id": "1"' sweep/ranks-2/summary.json &&
  pass "job array: one task per rank count (1, 2), both COMPLETED" ||
  fail "sweep array: $(scontrol show job -o "$id_sweep" | grep -o 'JobState=[A-Z]*' | tr '\n' ' ') $(cat sweep-*.err 2>/dev/null | tail -3)"
"$D" report scaling sweep/ranks-1 sweep/ranks-2 >report.txt 2>&1 &&
  [ "$(grep -cE '^\| +[12] \|' report.txt)" -ge 2 ] && pass "report scaling over the array's run dirs" ||
  fail "report scaling: $(cat report.txt)"
finish
