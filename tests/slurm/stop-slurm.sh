#!/usr/bin/env bash
# Vendored from ../shared/tools/slurm-local (see its README for what this cluster does and does not do).
# stop-slurm.sh - stop the daemons start-slurm.sh started, by their recorded PIDs
# only (never by name). Idempotent: missing/stale PID files are ignored.
#
#   SLURM_LOCAL_DIR          same base dir as start-slurm.sh (default /tmp/slurm-local)
#   SLURM_LOCAL_KEEP_MUNGE=1 leave munged running
#   SLURM_LOCAL_KEEP_JOBS=1  do not scancel jobs first (their slurmstepd/task
#                            processes then outlive slurmd: proctrack/linuxproc)
set -uo pipefail
BASE=${SLURM_LOCAL_DIR:-/tmp/slurm-local}

pid_in() {   # pid_in PIDFILE COMM -> prints the recorded pid if alive and really COMM
    local f=$1 comm=$2 pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ] && echo "$pid"
}

stop_one() {   # stop_one PIDFILE COMM
    local f=$1 comm=$2 pid
    if pid=$(pid_in "$f" "$comm"); then
        echo "[stop-slurm] stopping $comm pid $pid ($(basename "$f"))"
        kill "$pid" 2>/dev/null
        for _ in $(seq 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        if [ -d "/proc/$pid" ]; then
            echo "[stop-slurm] $comm pid $pid ignored SIGTERM for 15 s, sending SIGKILL"
            kill -9 "$pid" 2>/dev/null
        fi
    else
        echo "[stop-slurm] $(basename "$f"): no live $comm recorded"
    fi
    rm -f "$f"
}

# Cancel jobs through Slurm so their processes end cleanly before slurmd goes.
if [ "${SLURM_LOCAL_KEEP_JOBS:-0}" != 1 ] && pid_in "$BASE/run/slurmctld.pid" slurmctld >/dev/null \
        && scontrol ping 2>/dev/null | grep -q UP; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        echo "[stop-slurm] cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for _ in $(seq 60); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

for f in "$BASE"/run/slurmd-*.pid "$BASE"/run/slurmd.pid; do
    case "$f" in *.slurm.pid) continue ;; esac   # slurmd's own copies, same pid
    [ -e "$f" ] && stop_one "$f" slurmd
done
[ -e "$BASE/run/slurmctld.pid" ] && stop_one "$BASE/run/slurmctld.pid" slurmctld
if [ "${SLURM_LOCAL_KEEP_MUNGE:-0}" != 1 ] && [ -e "$BASE/run/munged.pid" ]; then
    stop_one "$BASE/run/munged.pid" munged
fi
exit 0
