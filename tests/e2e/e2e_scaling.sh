#!/usr/bin/env bash
# Scaling reports: a sweep of 1, 2 and 4 CPU ranks; the report's numbers recomputed from the
# summaries (efficiency within 1e-9 of the formula); a PNG is written; mixed runs are refused.
source "$(dirname "$0")/e2e_lib.sh"
command -v mpirun >/dev/null || skip_test "mpirun not found"
/usr/bin/python3 -c "import json" || skip_test "/usr/bin/python3 not found"
"$DPTRAIN" synth --rows 20000 --features 64 --targets 4 -o s.h5 >/dev/null
cat >s.cfg <<'CFG'
name = "sweep";
data = { file = "s.h5"; };
model = ( { type = "dense"; units = 256; activation = "relu"; }, { type = "dense"; units = 4; } );
fit = { batch_size = 256; loss = "mse"; metrics = ["mae"]; };
CFG
DPTRAIN="$DPTRAIN" "$SRC/tools/scaling-sweep" s.cfg --ranks 1,2,4 --steps 30 --out strong >strong.txt 2>sweep.log ||
  { fail "strong sweep: $(tail -3 sweep.log)"; finish; }
cat strong.txt
/usr/bin/python3 - strong <<'PY' && pass "strong scaling numbers match the formula (1e-9)" || fail "strong scaling numbers"
import csv, json, sys
d = sys.argv[1]
s = {p: json.load(open(f"{d}/ranks-{p}/summary.json")) for p in (1, 2, 4)}
rows = list(csv.DictReader(open(f"{d}/report/scaling.csv")))
assert [int(float(r["ranks"])) for r in rows] == [1, 2, 4]
for r in rows:
    p = int(float(r["ranks"]))
    t1, tp = s[1]["steady_step_seconds"], s[p]["steady_step_seconds"]
    assert abs(float(r["efficiency"]) - t1 / (p * tp)) <= 1e-9, (r, t1, tp)
    assert abs(float(r["speedup"]) - t1 / tp) <= 1e-9
    assert s[p]["ranks"] == p and s[p]["global_batch"] == 256
PY
DPTRAIN="$DPTRAIN" "$SRC/tools/scaling-sweep" s.cfg --ranks 1,2 --steps 30 --mode weak --out weak >weak.txt 2>>sweep.log ||
  fail "weak sweep"
/usr/bin/python3 - weak <<'PY' && pass "weak scaling numbers match the formula (1e-9)" || fail "weak scaling numbers"
import csv, json, sys
d = sys.argv[1]
s = {p: json.load(open(f"{d}/ranks-{p}/summary.json")) for p in (1, 2)}
rows = list(csv.DictReader(open(f"{d}/report/scaling.csv")))
assert [int(float(r["ranks"])) for r in rows] == [1, 2], rows
for r in rows:
    p = int(float(r["ranks"]))
    x1, xp = s[1]["steady_samples_per_second"], s[p]["steady_samples_per_second"]
    assert abs(float(r["efficiency"]) - xp / (p * x1)) <= 1e-9
    assert s[p]["per_rank_batch"] == 256
PY
grep -q "^weak scaling" weak.txt && pass "weak sweep reported as weak" || fail "weak sweep label"
if command -v gnuplot >/dev/null; then
  [ "$(head -c 4 strong/report/scaling.png | tail -c 3)" = "PNG" ] && pass "scaling.png written" || fail "no PNG"
else
  skip_part "gnuplot not found: the scaling plot"
fi
"$DPTRAIN" report scaling strong/ranks-1 strong/ranks-2 -o proj --project 1,2,8,64 >proj.txt &&
  grep -q "| *64 |" proj.txt && pass "projection to 64 GPUs printed" || fail "projection"
# summary.json is JSON for any name (quotes and backslashes escaped), and report scaling reads any
# JSON formatting of it: re-indented, keys sorted.
sed 's/^name = "sweep";/name = "a\\"b\\\\c";/' s.cfg >quoted.cfg
"$DPTRAIN" fit quoted.cfg --set fit.epochs=1 --set fit.steps_per_epoch=3 --run-dir quoted >quoted.log 2>&1 &&
  /usr/bin/python3 -c 'import json, sys; n = json.load(open("quoted/summary.json"))["name"]; sys.exit(n != "a\"b\\c")' &&
  pass "a job named a\"b\\c writes a summary.json that JSON parsers read, name intact" ||
  fail "summary.json of a job named a\"b\\c: $(grep name quoted/summary.json; tail -1 quoted.log)"
for p in 1 2; do
  mkdir -p reindented/ranks-$p
  /usr/bin/python3 -m json.tool --sort-keys --indent 3 strong/ranks-$p/summary.json >reindented/ranks-$p/summary.json
done
"$DPTRAIN" report scaling reindented/ranks-1 reindented/ranks-2 -o reindented/report >reindented.txt 2>&1 &&
  "$DPTRAIN" report scaling strong/ranks-1 strong/ranks-2 -o original >original.txt 2>&1 &&
  cmp -s reindented/report/scaling.csv original/scaling.csv &&
  pass "report scaling reads summary.json re-indented with sorted keys: the same table" ||
  fail "report scaling on re-indented summaries: $(tail -2 reindented.txt)"
# The report's directory never reaches a shell (gnuplot runs without one).
"$DPTRAIN" report scaling strong/ranks-1 strong/ranks-2 -o "rep'\$(touch MARK)'" >quoted-dir.txt 2>&1 &&
  [ ! -e MARK ] && pass "a report directory with shell syntax: nothing ran" || fail "report dir: $(ls MARK 2>&1; tail -1 quoted-dir.txt)"
sed 's/units = 256;/units = 128;/' s.cfg >other.cfg
"$DPTRAIN" fit other.cfg --set fit.epochs=1 --set fit.steps_per_epoch=10 --run-dir other >/dev/null 2>&1
expect_error 2 "are runs of different jobs or models" "$DPTRAIN" report scaling strong/ranks-1 other -o mixed
expect_error 2 "strong/ranks-1/metrics.json: cannot read: No such file or directory (a run's figures are in strong/ranks-1/summary.json" \
  "$DPTRAIN" report scaling strong/ranks-1/metrics.json strong/ranks-2
expect_error 2 "needs a 1-rank run as its baseline" "$DPTRAIN" report scaling strong/ranks-2 strong/ranks-4 -o nobase
# A run too short for steady-state figures is named as such, with how many steps it needs
"$DPTRAIN" fit s.cfg --set fit.epochs=1 --set fit.steps_per_epoch=3 --run-dir short >/dev/null 2>&1 || fail "a 3-step run"
expect_error 2 "short/summary.json: the run was too short for steady-state figures: the first 5 steps are left out" \
  "$DPTRAIN" report scaling short
finish
