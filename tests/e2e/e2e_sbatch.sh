#!/usr/bin/env bash
# dptrain sbatch: the UVA gpupod preset for 2 nodes x 8 A100s; impossible requests refused; shell
# injection through job names and paths does not execute when the script runs (srun stubbed).
source "$(dirname "$0")/e2e_lib.sh"

"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site uva-gpupod --nodes 2 --gpus-per-node 8 >uva.sh || fail "uva preset"
for want in "#SBATCH --partition=gpu" "#SBATCH --nodes=2" "#SBATCH --ntasks-per-node=8" "#SBATCH --gres=gpu:a100:8" \
            "#SBATCH --constraint=gpupod" "#SBATCH --requeue" "#SBATCH --signal=B:USR1@300" "srun --mpi=pmix --kill-on-bad-exit=1 dptrain fit"; do
  grep -qF -- "$want" uva.sh && pass "uva: $want" || fail "uva script lacks '$want'"
done
grep -q -- "--gpus-per-task" uva.sh && fail "uses --gpus-per-task" || pass "no --gpus-per-task"
bash -n uva.sh && pass "script parses" || fail "bash -n uva.sh"

expect_error 2 "--gpus-per-node 16: site uva-gpupod has 8 GPUs per node" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site uva-gpupod --gpus-per-node 16
expect_error 2 "site nersc-perlmutter needs --account" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site nersc-perlmutter
expect_error 2 "--time 6h: expected MM, MM:SS, HH:MM:SS" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --time 6h

expect_error 2 "--signal-minutes 5: the signal would come before the job starts (--time 4)" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --time 4
expect_error 2 "--ranks-per-node 4 with --gpus-per-node 2: dptrain runs one rank per GPU" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --gpus-per-node 2 --ranks-per-node 4
expect_error 2 "--sweep: 16 ranks do not fit in 1 node x 8 GPUs" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --sweep 1,16
for t in 90 90:30 02:00:00 1-12 1-12:30 1-12:30:15; do
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --time $t | grep -qxF "#SBATCH --time=$t" && pass "--time $t" ||
    fail "--time $t not accepted"
done

# A site file: every key, and its errors with file:line
cat >site.cfg <<'SITE'
name = "localci";
partition = "gpu";
gpu_type = "fake";
gpus_per_node = 2;
constraint = "gpupod";
cpus_per_task = 1;
account_required = false;
cpu_partition = "cpu";
launcher = "srun";
srun_mpi = "pmix_v4";
module = "";
signal = "USR2";
signal_minutes = 1;
SITE
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./site.cfg --time 10 >site.sh || fail "site file"
for want in "#SBATCH --gres=gpu:fake:2" "#SBATCH --ntasks-per-node=2" "#SBATCH --cpus-per-task=1" \
            "#SBATCH --signal=B:USR2@60" "srun --mpi=pmix_v4 --kill-on-bad-exit=1 dptrain fit" "MODULE=''" "(site localci)"; do
  grep -qF -- "$want" site.sh && pass "site file: $want" || fail "site script lacks '$want'"
done
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./site.cfg --cpu --ranks-per-node 2 --time 10 >cpu.sh
grep -qxF "#SBATCH --partition=cpu" cpu.sh && ! grep -q -- "--gres" cpu.sh && pass "--cpu: cpu partition, no gres" ||
  fail "--cpu script"
expect_error 2 "--gpus-per-node 4: site localci has 2 GPUs per node" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./site.cfg --gpus-per-node 4
printf 'name = "x";\ngpus = 4;\n' >bad1.cfg
expect_error 2 "bad1.cfg:2: unknown key 'gpus' in site file" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./bad1.cfg
printf 'name = "x";\n\ngpus_per_node = "eight";\n' >bad2.cfg
expect_error 2 "bad2.cfg:3: gpus_per_node: expected an integer from 1 to 64" \
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./bad2.cfg
printf 'name = "x";\npartition = ;\n' >bad3.cfg
expect_error 2 "bad3.cfg:2: syntax error" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./bad3.cfg
expect_error 2 "--site nosuch: unknown site" "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site nosuch

# The templates in jobs/ are what the generator prints today (regenerate: tools/make-templates.sh).
for t in "$SRC"/jobs/*.sbatch; do
  bash -n "$t" || fail "$t does not parse"
done
(cd "$SRC" && "$DPTRAIN" sbatch --generic) | diff - "$SRC/jobs/dptrain.sbatch" >/dev/null &&
  pass "jobs/dptrain.sbatch is current" || fail "jobs/dptrain.sbatch differs from 'dptrain sbatch --generic'"
for j in seed_mlp cancer_mlp mnist_cnn; do
  (cd "$SRC" && "$DPTRAIN" sbatch "jobs/$j.cfg") | diff - "$SRC/jobs/$j.sbatch" >/dev/null &&
    pass "jobs/$j.sbatch is current" || fail "jobs/$j.sbatch differs from 'dptrain sbatch jobs/$j.cfg'"
done
# ... and so is the example in README.md
uva_cmd='dptrain sbatch jobs/seed_mlp.cfg --site uva-gpupod --nodes 2 --gpus-per-node 8 --time 06:00:00'
awk -v m="\`$uva_cmd\`:" '$0 == m { s = 1; next } s == 1 && /^```bash$/ { s = 2; next } s == 2 && /^```$/ { exit }
  s == 2 { print }' "$SRC/README.md" >readme-uva.sh
(cd "$SRC" && "$DPTRAIN" ${uva_cmd#dptrain }) | diff - readme-uva.sh >/dev/null && [ -s readme-uva.sh ] &&
  pass "the README's generated script is current" || fail "README.md's example differs from '$uva_cmd'"

# A sweep is a job array with one task per rank count.
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site ./site.cfg --cpu --ranks-per-node 2 --nodes 2 --sweep 1,2,4 \
  --sweep-mode weak --steps 7 --time 10 >sweep.sh
grep -qxF "#SBATCH --array=0-2" sweep.sh && grep -qxF "RANKS=(1 2 4)" sweep.sh &&
  grep -qF 'fit.batch_size=$(( 1024 * P ))' sweep.sh && grep -qF "fit.steps_per_epoch=7" sweep.sh &&
  pass "sweep: array 0-2 over 1 2 4 ranks, weak" || fail "sweep script: $(grep -E 'array|RANKS|batch' sweep.sh)"

# Injection: a directory and a job name full of shell syntax (the name without '/', which names
# may not hold: the commands it smuggles in would create their marks in the script's directory)
weird="dir with 'q' \`touch $WORK/MARK1\` \$(touch $WORK/MARK2)"
mkdir -p "$weird"
cp "$SRC/jobs/cancer_mlp.cfg" "$weird/job \"x\".cfg"
"$DPTRAIN" sbatch "$weird/job \"x\".cfg" --set "name=\$(touch MARK3)\`touch MARK4\`" \
  --set "fit.epochs=3" -o weird.sh >/dev/null || fail "generate with a weird path"
mkdir stubs
printf '#!/bin/bash\nprintf "%%s\\n" "$@" >%s/srun-args.txt\nexit 0\n' "$WORK" >stubs/srun
printf '#!/bin/bash\necho scontrol "$@" >>%s/scontrol.txt\n' "$WORK" >stubs/scontrol
ln -s "$DPTRAIN" stubs/dptrain
chmod +x stubs/*
SLURM_JOB_ID=42 PATH="$WORK/stubs:$PATH" bash weird.sh >run.log 2>&1 || fail "running the script: $(tail -2 run.log)"
ls "$WORK"/MARK* >/dev/null 2>&1 && fail "injection executed: $(ls "$WORK"/MARK*)" || pass "no injected command ran"
grep -qxF "$weird/job \"x\".cfg" srun-args.txt && pass "the job path reached dptrain intact" ||
  fail "job path mangled: $(cat srun-args.txt)"
grep -qxF -- "fit.epochs=3" srun-args.txt && pass "--set values passed through" || fail "--set lost"
grep -q "^#SBATCH --job-name=[A-Za-z0-9._:-]*$" weird.sh && pass "job name sanitized in #SBATCH" || fail "job-name line"
# A newline in the job name cannot start a new #SBATCH directive or command.
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --set "name=x
#SBATCH --wrap=touch MARK5
touch MARK6" >nl.sh
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" >plain.sh
[ "$(grep -c '^#SBATCH --' nl.sh)" = "$(grep -c '^#SBATCH --' plain.sh)" ] && ! grep -q '^#SBATCH --wrap' nl.sh && ! grep -q '^touch' nl.sh &&
  pass "newline in the job name stays inside one directive" || fail "newline injection: $(grep -n SBATCH nl.sh)"
SLURM_JOB_ID=43 PATH="$WORK/stubs:$PATH" bash nl.sh >nl.log 2>&1
ls "$WORK"/MARK* >/dev/null 2>&1 && fail "injection executed: $(ls "$WORK"/MARK*)" || pass "newline: nothing ran"

# A newline in the job file's path or in a site file's name cannot end the script's header comment
# and start a command or a directive of its own (the script stops at once here: no dptrain on PATH).
nlpath=$'a\ntouch MARK7\n#SBATCH --uid=0\n#.cfg'
cp "$SRC/jobs/seed_mlp.cfg" "$nlpath"
printf 'name = "x\\ntouch MARK8\\n#SBATCH --uid=0";\n' >nlsite.cfg
"$DPTRAIN" sbatch "$nlpath" --site ./nlsite.cfg --time 10 >nlpath.sh 2>nlpath.err || fail "sbatch with a newline in the path: $(cat nlpath.err)"
(cd "$WORK" && PATH=/usr/bin:/bin bash nlpath.sh >nlpath.log 2>&1)
! ls "$WORK"/MARK* >/dev/null 2>&1 && ! grep -q '^#SBATCH --uid' nlpath.sh && ! grep -q '^touch' nlpath.sh &&
  pass "newlines in the job path and the site name stay inside the header comment" ||
  fail "header injection: $(ls "$WORK"/MARK* 2>/dev/null) $(grep -n -e '^touch' -e 'uid' nlpath.sh)"

# The signal Slurm sends before the limit reaches dptrain, and exit 3 requeues the job
mkdir stubs2
# (the stub says when its trap is in; the signal is sent then, however slow the machine is)
printf '#!/bin/bash\ntrap "exit 3" USR1\ntouch "%s/srun-ready"\nsleep 30 &\nwait\n' "$WORK" >stubs2/srun
cp -P stubs/scontrol stubs/dptrain stubs2/
chmod +x stubs2/*
rm -f scontrol.txt srun-ready
SLURM_JOB_ID=77 PATH="$WORK/stubs2:$PATH" bash uva.sh >sig.log 2>&1 &
spid=$!
for i in $(seq 1 300); do [ -e srun-ready ] && break; sleep 0.1; done
kill -USR1 $spid
wait $spid
rc=$?
[ $rc -eq 3 ] && grep -q "scontrol requeue 77" scontrol.txt && pass "USR1 forwarded, exit 3 requeued the job" ||
  fail "signal/requeue: rc $rc, $(cat scontrol.txt 2>/dev/null) $(tail -2 sig.log)"
finish
