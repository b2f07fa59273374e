#!/usr/bin/env bash
# Training across nodes, and the node failures it must survive, on a Slurm cluster of 3 nodes
# made of network namespaces on this machine (tests/cluster/start-cluster.sh): each node has its
# own hostname, address and slurmd, the ranks of different nodes talk TCP through veths and a
# bridge, the run dir is on the file system all nodes share. Every job is the script
# `dptrain sbatch --nodes 2 --gpus-per-node 1` writes for the cluster's site file (a CPU rank
# stands in for each fake GPU). Checks:
#   - a 2-node job trains with one rank per node (binding table, summary.json's hosts, traffic
#     through the nodes' links) to the weights of a 1-rank run within 1e-5;
#   - a node dies mid-job: the job ends within the collective timeout plus a margin, naming the
#     lost rank and node, requeues, resumes on the remaining nodes, and ends with the weights of
#     the uninterrupted 2-node run (bit for bit);
#   - a link down for longer than the timeout: the same;
#   - a link down for a moment shorter than the timeout: the run goes on, no restart;
#   - preemption (scontrol requeue mid-epoch): checkpoint, requeue, resume, same weights;
#   - a slow node (its rank on a core a busy loop shares): the run ends and the summary's per-rank
#     times show the straggler;
#   - `report scaling` over 1, 2 and 3 nodes (a job array);
#   - nothing is left: no namespace, link, mount or daemon.
# Needs root and network namespaces; skips elsewhere (fails under CI). About 3.5 minutes on 2 cores.
# Usage: tests/e2e/e2e_multinode.sh DPTRAIN SRC
source "$(dirname "$0")/e2e_lib.sh"
[ "$(id -u)" = 0 ] || skip_test "the test cluster needs root (network and UTS namespaces)"
CLUSTER=$SRC/tests/cluster
chmod 711 "$WORK" # munged (user munge) reaches its socket and key under it
export DPTRAIN_CLUSTER_DIR=$WORK/cluster
source "$CLUSTER/cluster-env.sh"
bash "$CLUSTER/start-cluster.sh" >start.log 2>&1
rc=$?
[ $rc = 77 ] && skip_test "$(tail -n 1 start.log)"
[ $rc = 0 ] || { fail "start-cluster.sh: $(tail -n 5 start.log)"; finish; }
cleanup() {
  bash "$CLUSTER/stop-cluster.sh" >/dev/null 2>&1
  pkill -f "dptrain-multinode-hog $WORK" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
pass "3 nodes up: $(on_node 1 sinfo -h -N -o '%N:%T' | tr '\n' ' ')($(for i in 1 2 3; do on_node "$i" hostname; done | tr '\n' ' ' | sed 's/ $//'))"

# The batch scripts find this dptrain on the PATH sbatch passes on (the site has no modules).
export PATH=$(dirname "$DPTRAIN"):$PATH
SITE=$CLUSTER/cluster-site.cfg
TIMEOUT=8 # fit.collective_timeout
# The faults' job: a narrow seed_mlp, about 12 ms a step on 2 ranks, 1000 steps, last.h5 every 25 steps.
STEPS=1000
job=(--set fit.threads=1 --set model.[1].units=256 --set model.[3].units=256 --set model.[4].units=256
     --set model.[5].units=256 --set data.synthetic.rows=$((1024 * STEPS)) --set fit.checkpoint.every_steps=25
     --set fit.collective_timeout=$TIMEOUT)
layers=(dense dense_1 dense_2 dense_3 dense_4 dense_5)

sbatch_script() { # NAME [options]: the batch script for the job, into NAME.sbatch
  local name=$1
  shift
  "$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site "$SITE" --gpus-per-node 1 --time 15 --run-dir "runs/$name" \
    "${job[@]}" --set name="$name" "$@" -o "$name.sbatch" >/dev/null
}
submit() { on_node 1 sbatch --parsable "$@" | cut -d';' -f1; }
field() { on_node 1 scontrol show job -o "$1" 2>/dev/null | grep -o " $2=[^ ]*" | head -1 | cut -d= -f2; }
wait_job() { # ID SECONDS: until the job has left the queue
  local t=0
  while [ $t -lt "$2" ]; do
    [ -z "$(on_node 1 squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 1
    t=$((t + 1))
  done
  return 1
}
# started NAME ID: waits until the job runs and has written runs/NAME/last.h5, then prints the node
# (number) of its allocation that does not run the batch script (rank 1's); fails if it does not.
started() {
  local t=0 node
  while [ ! -e "runs/$1/last.h5" ] && [ $t -lt 900 ]; do sleep 0.1; t=$((t + 1)); done
  [ -e "runs/$1/last.h5" ] || { fail "$1: no checkpoint after 90 s: $(on_node 1 squeue -h -j "$2")"; return 1; }
  node=$(other_node "$2")
  [ -n "$node" ] || { fail "$1: job $2 has no second node: $(on_node 1 squeue -h -j "$2")"; return 1; }
  echo "$node"
}
# The node (number) of the job's allocation that does not run the batch script (rank 1's).
other_node() {
  local batch nodes n
  batch=$(field "$1" BatchHost)
  nodes=$(on_node 1 scontrol show hostnames "$(field "$1" NodeList)")
  for n in $nodes; do [ "$n" != "$batch" ] && { echo "${n#"$CLUSTER_NODE_PREFIX"}"; return; }; done
}
# seconds from START (date +%s.%N) until the job's log says dptrain exited
exit_after() {
  local log=$1 start=$2 t=0
  while ! grep -q "^dptrain: exit status" "$log" 2>/dev/null && [ $t -lt 600 ]; do sleep 0.1; t=$((t + 1)); done
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}
# bytes node I received on its eth0 (/proc/net/dev answers for the reader's network namespace)
rx_bytes() { on_node "$1" awk '$1 == "eth0:" { print $2 }' /proc/net/dev; }

# 1. Across 2 nodes: a small learnable job (as e2e_mpi.sh's: shuffling and dropout on) beside a
# 1-rank run of it, then the narrow seed_mlp uninterrupted: the reference of the faults below.
# (On seed_mlp's random targets Adam's first steps turn float rounding into sign flips, so its
# 1 vs 2 rank difference is not a measure of anything.)
"$DPTRAIN" synth --rows 8000 --features 10 --seed 2 -o mn.h5 >/dev/null
cat >mn.cfg <<'CFG'
name = "across";
data = { file = "mn.h5"; validation_split = 0.2; normalize = "standard"; shuffle = true; };
model = ( { type = "dense"; units = 64; activation = "relu"; }, { type = "dropout"; rate = 0.3; },
          { type = "dense"; units = 32; activation = "tanh"; }, { type = "dense"; units = 1; } );
fit = { epochs = 3; batch_size = 66; loss = "mse"; metrics = ["mae"]; seed = 4; threads = 1; };
CFG
"$DPTRAIN" sbatch mn.cfg --site "$SITE" --gpus-per-node 1 --nodes 2 --time 15 --run-dir runs/across -o across.sbatch >/dev/null
grep -qxF "#SBATCH --nodes=2" across.sbatch && grep -qxF "#SBATCH --gres=gpu:fake:1" across.sbatch ||
  fail "across.sbatch: $(grep '^#SBATCH' across.sbatch | tr '\n' ' ')"
rx0=$(($(rx_bytes 1) + $(rx_bytes 2) + $(rx_bytes 3)))
id=$(submit across.sbatch)
sbatch_script two --nodes 2
id_two=$(submit two.sbatch)
"$DPTRAIN" fit mn.cfg --run-dir one >one.log 2>&1 || fail "1-rank run: $(tail -n 2 one.log)"
wait_job "$id" 120 || fail "the 2-node job is still queued after 120 s: $(on_node 1 squeue -h)"
rx=$(($(rx_bytes 1) + $(rx_bytes 2) + $(rx_bytes 3) - rx0))
log=across-$id.out
[ "$(field "$id" JobState)" = COMPLETED ] && pass "2-node job $id COMPLETED on $(field "$id" NodeList)" ||
  fail "2-node job: $(field "$id" JobState) $(tail -n 5 across-$id.err)"
hosts=$(grep -A3 '^Binding' "$log" | awk '$1 ~ /^[01]$/ {print $2}' | sort -u | wc -l)
[ "$hosts" = 2 ] && pass "binding table: ranks 0 and 1 on two hosts: $(grep -A3 '^Binding' "$log" | awk '$1 ~ /^[01]$/ {printf "%s:%s ", $1, $2}')" ||
  fail "binding table: $(grep -A3 '^Binding' "$log")"
/usr/bin/python3 -c "import json,sys; d=json.load(open('runs/across/summary.json')); h=d['hosts']; sys.exit(not (d['nodes']==2 and len(set(h))==2)); " &&
  pass "summary.json: nodes 2, $(grep -o '"hosts": \[[^]]*\]' runs/across/summary.json)" ||
  fail "summary.json: $(grep -oE '"(nodes|hosts)": [^,]*' runs/across/summary.json | tr '\n' ' ')"
grad=$(grep -o '"allreduce_bytes_per_step": [0-9]*' runs/across/summary.json | awk '{print $2}')
steps=$(grep -o '"steps": [0-9]*' runs/across/summary.json | awk '{print $2}')
holds "$rx" "v >= $grad * $steps" && pass "the sums went through the nodes' links: $((rx / 1000)) kB received (gradients ${grad} B x $steps steps)" ||
  fail "only $rx bytes crossed the links (gradients: $grad B x $steps steps)"
diff=$(/usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" runs/across/last.h5 one/last.h5 1e-5 2>&1) &&
  pass "2 nodes vs 1 rank: $diff" || fail "2 nodes vs 1 rank: $diff"
wait_job "$id_two" 120 || fail "the reference 2-node job is still queued after 120 s: $(on_node 1 squeue -h)"
[ "$(field "$id_two" JobState)" = COMPLETED ] && [ "$(field "$id_two" Restarts)" = 0 ] &&
  pass "the uninterrupted 2-node run of the narrow seed_mlp ($STEPS steps) COMPLETED" ||
  fail "reference run: $(field "$id_two" JobState) $(tail -n 5 two-$id_two.err)"
ref=runs/two/last.h5

# resumed_same NAME ID KIND: the job completed after a restart, resumed from last.h5, same weights
resumed_same() {
  local name=$1 id=$2 kind=$3 log=$1-$2.out
  [ "$(field "$id" JobState)" = COMPLETED ] && [ "$(field "$id" Restarts)" -ge 1 ] &&
    grep -q "^Resumed from .*last.h5" "$log" &&
    pass "$kind: requeued ($(field "$id" Restarts) restart), resumed from last.h5 on $(field "$id" NodeList), COMPLETED" ||
    fail "$kind: $(field "$id" JobState), restarts $(field "$id" Restarts): $(grep -E '^dptrain:|Resumed' "$log" | tail -8)"
  same_weights "runs/$name/last.h5" "$ref" && pass "$kind: the same weights as the uninterrupted run, bit for bit" ||
    fail "$kind: weights differ from the uninterrupted run: $(/usr/bin/python3 "$SRC/tests/e2e/compare_weights.py" "runs/$name/last.h5" "$ref" 0 2>&1)"
}
# exit_in_time KIND SECONDS LOG: dptrain ended within the timeout plus a margin, naming the lost rank
exit_in_time() {
  local kind=$1 took=$2 name=$3 id=$4 lost=$5
  holds "$took" "v <= $TIMEOUT + 20" && pass "$kind: dptrain exited $took s after the fault (collective timeout $TIMEOUT s)" ||
    fail "$kind: dptrain exited $took s after the fault"
  grep -q "rank 1 on $(node_name "$lost") does not answer" "$name-$id.err" &&
    pass "$kind: $(grep -o 'rank 1 on [^ ]* does not answer[^;]*' "$name-$id.err" | head -1)" ||
    fail "$kind: the lost rank is not named: $(grep '^dptrain: error' "$name-$id.err" | head -3)"
}

# 2. A node dies.
sbatch_script node_dies --nodes 2
id=$(submit node_dies.sbatch)
if dead=$(started node_dies "$id"); then
t0=$(date +%s.%N)
kill_node "$dead" || fail "node $dead: processes survive SIGKILL"
took=$(exit_after "node_dies-$id.out" "$t0")
exit_in_time "node $(node_name "$dead") dies" "$took" node_dies "$id" "$dead"
wait_job "$id" 150 || fail "node_dies: still queued after 150 s: $(on_node 1 squeue -h)"
resumed_same node_dies "$id" "node $(node_name "$dead") died"
case ",$(on_node 1 scontrol show hostnames "$(field "$id" NodeList)" | tr '\n' ','),"  in
  *",$(node_name "$dead"),"*) fail "the resumed job ran on the dead node $(node_name "$dead")" ;;
  *) pass "resumed on the remaining nodes: $(field "$id" NodeList)" ;;
esac
start_node "$dead"
wait_nodes_up 3 60 || fail "node $dead did not come back: $(on_node 1 sinfo -h -N)"
fi

# 3. A link down for longer than the timeout.
sbatch_script link_down --nodes 2
id=$(submit link_down.sbatch)
if cut=$(started link_down "$id"); then
t0=$(date +%s.%N)
link_down "$cut"
took=$(exit_after "link_down-$id.out" "$t0")
sleep 2
link_up "$cut"
held=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
exit_in_time "link to $(node_name "$cut") down for $held s" "$took" link_down "$id" "$cut"
wait_job "$id" 150 || fail "link_down: still queued after 150 s: $(on_node 1 squeue -h)"
resumed_same link_down "$id" "link to $(node_name "$cut") down for $held s"
wait_nodes_up 3 60 || fail "node $cut did not come back: $(on_node 1 sinfo -h -N)"
fi

# 4. A link that drops for 2 s (shorter than the timeout).
sbatch_script link_flap --nodes 2
id=$(submit link_flap.sbatch)
if flap=$(started link_flap "$id"); then
link_down "$flap"
sleep 2
link_up "$flap"
wait_job "$id" 120 || fail "link_flap: still queued after 120 s"
[ "$(field "$id" JobState)" = COMPLETED ] && [ "$(field "$id" Restarts)" = 0 ] &&
  ! grep -q "does not answer" link_flap-$id.err &&
  pass "link to $(node_name "$flap") down for 2 s: the run went on (no restart, COMPLETED)" ||
  fail "link flap: $(field "$id" JobState), restarts $(field "$id" Restarts): $(grep '^dptrain' link_flap-$id.err | head -3)"
same_weights runs/link_flap/last.h5 "$ref" && pass "link flap: the same weights as the uninterrupted run" ||
  fail "link flap: weights differ from the uninterrupted run"
fi

# 5. Preemption: scontrol requeue while the job runs on 2 nodes.
sbatch_script preempt --nodes 2
id=$(submit preempt.sbatch)
if started preempt "$id" >/dev/null; then
sleep 1
on_node 1 scontrol requeue "$id" || fail "scontrol requeue $id"
wait_job "$id" 150 || fail "preempt: still queued after 150 s"
grep -q "dptrain: signal received" preempt-$id.out && grep -q "^dptrain: exit status 3" preempt-$id.out &&
  pass "preemption: the ranks checkpointed and exited 3 ($(grep -m1 -o 'signal received.*' preempt-$id.out))" ||
  fail "preemption: no checkpoint on the signal: $(grep -E '^dptrain' preempt-$id.out | head -6)"
resumed_same preempt "$id" "preemption"
fi

# 6. A slow node: rank 1 shares a core with a busy loop, rank 0 has a core of its own.
sbatch_script slow --nodes 2
id=$(submit slow.sbatch)
if slow=$(started slow "$id"); then
fast=$(field "$id" BatchHost)
fast=${fast#"$CLUSTER_NODE_PREFIX"}
pin() { # NODE CPU: dptrain's threads on that node onto that CPU
  local p
  for p in $(node_pids "$1"); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$DPTRAIN" ] && taskset -a -pc "$2" "$p" >/dev/null
  done
}
pin "$slow" 1
pin "$fast" 0
on_node "$slow" taskset -c 1 bash -c "exec -a 'dptrain-multinode-hog $WORK' bash -c 'while :; do :; done'" &
hog=$!
wait_job "$id" 180 || fail "slow: still queued after 180 s"
kill "$hog" 2>/dev/null
wait "$hog" 2>/dev/null
[ "$(field "$id" JobState)" = COMPLETED ] && pass "slow node $(node_name "$slow"): the run finished" ||
  fail "slow node: $(field "$id" JobState)"
straggler=$(/usr/bin/python3 -c "
import json; d = json.load(open('runs/slow/summary.json'))
c, a = d['compute_seconds_per_rank'], d['allreduce_seconds_per_rank']
print('%.2f %.2f %.2f %.2f' % (c[0], c[1], a[0], a[1]))")
read -r c0 c1 a0 a1 <<<"$straggler"
holds "$c1" "v > 1.3 * $c0" && holds "$a0" "v > $a1" &&
  pass "the summary shows the straggler: compute seconds rank 0 $c0, rank 1 ($(node_name "$slow")) $c1; all-reduce wait seconds rank 0 $a0, rank 1 $a1" ||
  fail "no straggler in the summary: compute $c0 vs $c1, all-reduce $a0 vs $a1"
fi

# 7. report scaling over 1, 2 and 3 nodes: a job array, one task per node count.
"$DPTRAIN" sbatch "$SRC/jobs/seed_mlp.cfg" --site "$SITE" --gpus-per-node 1 --time 15 --nodes 3 --run-dir sweep \
  --sweep 1,2,3 --steps 20 "${job[@]}" --set name=sweep -o sweep.sbatch >/dev/null
id=$(submit sweep.sbatch)
wait_job "$id" 180 || fail "sweep: still queued after 180 s"
ok=1
for t in 0 1 2; do [ "$(field "${id}_$t" JobState)" = COMPLETED ] || ok=0; done
[ $ok = 1 ] && pass "job array over 1, 2 and 3 nodes COMPLETED" ||
  fail "sweep: $(on_node 1 scontrol show job -o "$id" | grep -o 'JobState=[A-Z]*' | tr '\n' ' ') $(tail -n 3 sweep-*.err 2>/dev/null)"
"$DPTRAIN" report scaling sweep/ranks-1 sweep/ranks-2 sweep/ranks-3 >scaling.txt 2>&1 &&
  [ "$(grep -cE '^\| +[123] \|' scaling.txt)" = 3 ] && pass "report scaling over 1, 2, 3 nodes:
$(cat scaling.txt)" || fail "report scaling: $(cat scaling.txt)"
grep -q '"nodes": 3' sweep/ranks-3/summary.json || fail "sweep/ranks-3 did not run on 3 nodes"

# 8. Nothing left behind.
bash "$CLUSTER/stop-cluster.sh" >stop.log 2>&1 || fail "stop-cluster.sh: $(cat stop.log)"
left=$(bash "$CLUSTER/stop-cluster.sh" --check 2>&1) && pass "$left (namespaces, links, mounts, daemons)" || fail "$left"
finish
