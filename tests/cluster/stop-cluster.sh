#!/usr/bin/env bash
# stop-cluster.sh - takes down what start-cluster.sh made: the jobs' processes and the daemons
# (by recorded PID and command name, never by name alone), every process left in the cluster's
# namespaces, the namespaces themselves (which removes their veths and the bridge) and the UTS
# bind mounts. Idempotent. With --check, only reports what is left (exit 1 if anything is).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster-env.sh"

leftovers() {
  local left=""
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case "$ns" in "$CLUSTER_NS_PREFIX"-*) left="$left netns:$ns" ;; esac
  done
  for f in "$CLUSTER_DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    read -r pid comm <"$f"
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ] && left="$left $comm:$pid"
  done
  grep -q " $CLUSTER_DIR/ns/" /proc/self/mountinfo 2>/dev/null && left="$left mounts:$CLUSTER_DIR/ns"
  echo "$left"
}

if [ "${1:-}" = --check ]; then
  left=$(leftovers)
  [ -z "$left" ] && { echo "nothing left of the test cluster"; exit 0; }
  echo "left behind:$left"
  exit 1
fi

# Jobs' processes and daemons live in the nodes' namespaces: kill every one of them.
for i in $(seq "$CLUSTER_NODES"); do
  ip netns list 2>/dev/null | grep -q "^$(node_netns "$i")\b" && kill_node "$i"
done
for f in "$CLUSTER_DIR"/run/*.pid; do
  [ -e "$f" ] || continue
  read -r pid comm <"$f"
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ] && kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
  case "$ns" in "$CLUSTER_NS_PREFIX"-*) ip netns delete "$ns" ;; esac
done
for f in "$CLUSTER_DIR"/ns/uts-*; do
  [ -e "$f" ] || continue
  umount "$f" 2>/dev/null
  rm -f "$f"
done
rm -f "$CLUSTER_DIR/run/netns"
left=$(leftovers)
[ -z "$left" ] || { echo "stop-cluster: could not remove:$left" >&2; exit 1; }
exit 0
