# cluster-env.sh - names and helpers of the test cluster of start-cluster.sh (source it).
#   on_node I CMD...     run CMD on node I (its network and hostname; SLURM_CONF set)
#   start_node I         start node I's slurmd (again)
#   kill_node I          the node dies: every process in its namespace is killed (SIGKILL)
#   link_down I / link_up I   the node's cable: its port on the bridge down / up
#   wait_nodes_up N SECONDS   until N nodes are idle, mixed or allocated
# shellcheck shell=bash
CLUSTER_DIR=${DPTRAIN_CLUSTER_DIR:-/tmp/dptrain-cluster}
CLUSTER_NODES=${DPTRAIN_CLUSTER_NODES:-3}
CLUSTER_NET=${DPTRAIN_CLUSTER_NET:-10.213.77}
CLUSTER_NS_PREFIX=dptrain-cl # one test cluster per machine: a second start takes the first one down
CLUSTER_SWITCH=$CLUSTER_NS_PREFIX-switch
CLUSTER_NODE_PREFIX=dpnode
CLUSTER_CONF=$CLUSTER_DIR/etc/slurm.conf
export SLURM_CONF=$CLUSTER_CONF

node_name() { echo "$CLUSTER_NODE_PREFIX$1"; }
node_netns() { echo "$CLUSTER_NS_PREFIX-n$1"; }
node_addr() { echo "$CLUSTER_NET.$1"; }

on_node() {
  local i=$1
  shift
  nsenter --net="/run/netns/$(node_netns "$i")" --uts="$CLUSTER_DIR/ns/uts-$i" -- "$@"
}

# start_daemon I NAME CMD...: CMD in the background on node I, its PID recorded as NAME-I.pid with
# its command name, so that stop-cluster.sh kills exactly it.
start_daemon() {
  local i=$1 name=$2
  shift 2
  setsid nsenter --net="/run/netns/$(node_netns "$i")" --uts="$CLUSTER_DIR/ns/uts-$i" -- "$@" \
    >>"$CLUSTER_DIR/log/$name-$i.out" 2>&1 </dev/null &
  local pid=$!
  disown "$pid" 2>/dev/null || true
  sleep 0.2
  echo "$pid $(cat "/proc/$pid/comm" 2>/dev/null || echo gone)" >"$CLUSTER_DIR/run/$name-$i.pid"
}

start_node() {
  local i=$1
  mkdir -p "$CLUSTER_DIR/spool/$(node_name "$i")" "$CLUSTER_DIR/tmp/$(node_name "$i")"
  chmod 1777 "$CLUSTER_DIR/tmp/$(node_name "$i")"
  start_daemon "$i" slurmd /usr/sbin/slurmd -D -N "$(node_name "$i")" -f "$CLUSTER_CONF"
}

# The PIDs of every process in node I's network namespace.
node_pids() { ip netns pids "$(node_netns "$1")" 2>/dev/null; }

kill_node() {
  local i=$1 pids
  pids=$(node_pids "$i" | tr '\n' ' ')
  # shellcheck disable=SC2086
  [ -n "${pids// /}" ] && kill -9 $pids 2>/dev/null
  for _ in $(seq 50); do [ -z "$(node_pids "$i")" ] && return 0; sleep 0.1; done
  return 1
}

link_down() { ip -n "$CLUSTER_SWITCH" link set "port$1" down; }
link_up() { ip -n "$CLUSTER_SWITCH" link set "port$1" up; }

wait_nodes_up() {
  local want=$1 limit=$2 ready=0
  for _ in $(seq $((limit * 5))); do
    ready=$(on_node 1 sinfo -h -N -o '%N %T' 2>/dev/null | sort -u | grep -cE ' (idle|mixed|allocated)$' || true)
    [ "$ready" -ge "$want" ] && return 0
    sleep 0.2
  done
  return 1
}
