#!/usr/bin/env bash
# dptrain sbatch: the UVA gpupod preset for 2 nodes x 8 A100s; impossible requests refused; shell
# injection through job names and paths does not execute when the script runs (srun stubbed).
source "$(dirname "$0")/e2e_lib.sh"

"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site uva-gpupod --nodes 2 --gpus-per-node 8 >uva.sh || fail "uva preset"
for want in "#SBATCH --partition=gpu" "#SBATCH --nodes=2" "#SBATCH --ntasks-per-node=8" "#SBATCH --gres=gpu:a100:8" \
            "#SBATCH --constraint=gpupod" "#SBATCH --requeue" "#SBATCH --signal=B:USR1@300" "srun --mpi=pmix dptrain fit"; do
  grep -qF -- "$want" uva.sh && pass "uva: $want" || fail "uva script lacks '$want'"
done
grep -q -- "--gpus-per-task" uva.sh && fail "uses --gpus-per-task" || pass "no --gpus-per-task"
bash -n uva.sh && pass "script parses" || fail "bash -n uva.sh"

expect_error 2 "--gpus-per-node 16: site uva-gpupod has 8 GPUs per node" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site uva-gpupod --gpus-per-node 16
expect_error 2 "site nersc-perlmutter needs --account" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site nersc-perlmutter
expect_error 2 "--time 6h: expected HH:MM:SS" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --time 6h

# Injection: a directory and a job name full of shell syntax
weird="dir with 'q' \`touch $WORK/MARK1\` \$(touch $WORK/MARK2)"
mkdir -p "$weird"
cp "$SRC/jobs/cancer_mlp.cfg" "$weird/job \"x\".cfg"
"$DPTRAIN" sbatch "$weird/job \"x\".cfg" --set "name=\$(touch $WORK/MARK3)\`touch $WORK/MARK4\`" \
  --set "fit.epochs=3" -o weird.sh >/dev/null || fail "generate with a weird path"
mkdir stubs
printf '#!/bin/bash\nprintf "%%s\\n" "$@" >%s/srun-args.txt\nexit 0\n' "$WORK" >stubs/srun
printf '#!/bin/bash\necho scontrol "$@" >>%s/scontrol.txt\n' "$WORK" >stubs/scontrol
chmod +x stubs/*
SLURM_JOB_ID=42 PATH="$WORK/stubs:$PATH" bash weird.sh >run.log 2>&1 || fail "running the script: $(tail -2 run.log)"
ls "$WORK"/MARK* >/dev/null 2>&1 && fail "injection executed: $(ls "$WORK"/MARK*)" || pass "no injected command ran"
grep -qxF "$weird/job \"x\".cfg" srun-args.txt && pass "the job path reached dptrain intact" ||
  fail "job path mangled: $(cat srun-args.txt)"
grep -qxF -- "fit.epochs=3" srun-args.txt && pass "--set values passed through" || fail "--set lost"
grep -q "^#SBATCH --job-name=[A-Za-z0-9._:-]*$" weird.sh && pass "job name sanitized in #SBATCH" || fail "job-name line"

# The signal Slurm sends before the limit reaches dptrain, and exit 3 requeues the job
mkdir stubs2
printf '#!/bin/bash\ntrap "exit 3" USR1\nsleep 30 &\nwait\n' >stubs2/srun
cp stubs/scontrol stubs2/
chmod +x stubs2/*
rm -f scontrol.txt
SLURM_JOB_ID=77 PATH="$WORK/stubs2:$PATH" bash uva.sh >sig.log 2>&1 &
spid=$!
sleep 1
kill -USR1 $spid
wait $spid
rc=$?
[ $rc -eq 3 ] && grep -q "scontrol requeue 77" scontrol.txt && pass "USR1 forwarded, exit 3 requeued the job" ||
  fail "signal/requeue: rc $rc, $(cat scontrol.txt 2>/dev/null) $(tail -2 sig.log)"
finish
