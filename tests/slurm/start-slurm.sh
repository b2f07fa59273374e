#!/usr/bin/env bash
# Vendored from ../shared/tools/slurm-local (see its README for what this cluster does and does not do).
# start-slurm.sh - bring up a real Slurm cluster on ONE machine (Debian 12 "bookworm":
# Slurm 22.05, munge, OpenMPI 4.1) WITHOUT systemd, as root, for CI.
#
# Default: one node named after `hostname -s`, partitions gpu (default) and cpu,
# 2 fake gres/gpu, node feature "gpupod". Takes ~1 s when the packages are present,
# ~25 s from a bare debootstrap --variant=minbase bookworm (apt included).
#
# Idempotent: safe to run again. If the daemons this script recorded are alive and
# the generated config is unchanged, it does nothing; otherwise it stops the daemons
# it recorded (by PID, never by name) and starts them again.
#
# Knobs (environment):
#   SLURM_LOCAL_DIR        base dir for state/spool/logs/pids        (default /tmp/slurm-local)
#   SLURM_LOCAL_NODES      number of slurmd "nodes" on this machine  (default 1)
#                          1 -> node name = hostname -s; N>1 -> <host>n[1-N], one slurmd
#                          each (Debian builds Slurm with MULTIPLE_SLURMD), so -N 2 works.
#   SLURM_LOCAL_CPUS       CPUs advertised per node                  (default: nproc)
#                          (> nproc is fine: SlurmdParameters=config_overrides)
#   SLURM_LOCAL_GPUS       gres/gpu per node (0 = no gres)           (default 2)
#   SLURM_LOCAL_GPU_TYPE   gres type name                            (default fake)
#   SLURM_LOCAL_GPU_FILES  gres.conf File= (single node only)        (default: symlinks to /dev/null)
#   SLURM_LOCAL_FEATURES   node Features=                            (default gpupod)
#   SLURM_LOCAL_MEM        RealMemory per node in MB                 (default 75% of MemTotal)
#   SLURM_LOCAL_MPI        1 = also install openmpi-bin libopenmpi-dev gcc (default 1)
#   SLURM_LOCAL_NO_INSTALL 1 = never run apt-get                     (default 0)
#   SLURM_LOCAL_FRESH      1 = wipe slurmctld state (job ids restart at 1) (default 0)
#
# Afterwards sinfo/sbatch/srun/salloc/scontrol work with the default
# /etc/slurm/slurm.conf. Stop with stop-slurm.sh (kills only the recorded PIDs).
set -euo pipefail

BASE=${SLURM_LOCAL_DIR:-/tmp/slurm-local}
CONF_DIR=/etc/slurm
HOST=$(hostname -s)
NNODES=${SLURM_LOCAL_NODES:-1}
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
NGPU=${SLURM_LOCAL_GPUS:-2}
GPU_TYPE=${SLURM_LOCAL_GPU_TYPE:-fake}
FEATURES=${SLURM_LOCAL_FEATURES:-gpupod}
WANT_MPI=${SLURM_LOCAL_MPI:-1}
T0=$EPOCHREALTIME

log() { printf '[start-slurm %5.1fs] %s\n' "$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')" "$*"; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# pid_alive PIDFILE COMM -> true if the recorded pid is alive and is COMM
pid_alive() {
    local f=$1 comm=$2 pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ]
}
stop_pidfile() {   # stop_pidfile PIDFILE COMM
    local f=$1 comm=$2 pid
    if pid_alive "$f" "$comm"; then
        pid=$(cat "$f")
        log "stopping old $comm pid $pid"
        kill "$pid"
        for _ in $(seq 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && kill -9 "$pid"
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------------------
# 1. packages
# ---------------------------------------------------------------------------
PKGS="slurmctld slurmd slurm-client munge"
# gcc: mpicc is only a wrapper around "gcc" (libopenmpi-dev pulls gcc-12 but not gcc)
[ "$WANT_MPI" = 1 ] && PKGS="$PKGS openmpi-bin libopenmpi-dev gcc"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] && [ "${SLURM_LOCAL_NO_INSTALL:-0}" != 1 ]; then
    log "installing:$missing"
    # Keep the postinst scripts from starting services through /etc/init.d (no
    # systemd here, so invoke-rc.d would really start munged). Only create
    # policy-rc.d if there is none, and only remove the one we created.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
elif [ -n "$missing" ]; then
    die "missing packages:$missing (and SLURM_LOCAL_NO_INSTALL=1)"
fi
log "packages ok"

# ---------------------------------------------------------------------------
# 2. name resolution (slurm needs `hostname -s` to resolve)
# ---------------------------------------------------------------------------
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts

# ---------------------------------------------------------------------------
# 3. directories, fake GPU device files, config
# ---------------------------------------------------------------------------
if [ "$NNODES" = 1 ]; then
    NODES=("$HOST")
    NODELIST=$HOST
else
    NODES=()
    for ((n = 1; n <= NNODES; n++)); do NODES+=("${HOST}n$n"); done
    NODELIST="${HOST}n[1-$NNODES]"
fi

mkdir -p "$BASE"/{state,spool,log,run,dev,etc} "$CONF_DIR"
[ "${SLURM_LOCAL_FRESH:-0}" = 1 ] && rm -rf "${BASE:?}/state/"*

if [ -n "${SLURM_LOCAL_MEM:-}" ]; then
    MEM=$SLURM_LOCAL_MEM
else
    # 75% of MemTotal rounded down to 1 GiB: stable across runs (keeps the script
    # idempotent) and below what is free on an idle CI box. Not enforced (CR_Core).
    MEM=$(awk '/MemTotal/ {printf "%d", int($2/1024*0.75/1024)*1024}' /proc/meminfo)
fi

GRES_TYPES="" GRES_NODE=""
if [ "$NGPU" -gt 0 ]; then
    GRES_TYPES="GresTypes=gpu"
    GRES_NODE=" Gres=gpu:$GPU_TYPE:$NGPU"
fi

# Fake GPUs: slurmd wants gres.conf File= entries to be char/block devices; with
# plain files it logs "not a valid character or block device" and then does NOT set
# CUDA_VISIBLE_DEVICES. A symlink to /dev/null passes its stat() check. There is no
# cgroup device confinement here, so nothing ever opens them.
# SLURM_LOCAL_GPU_FILES='/dev/nvidia[0-7]' would point at real GPUs (untested).
{
    echo "# Generated by start-slurm.sh - GPUs (default: fake, File= symlinks to /dev/null; no cgroup enforcement)"
    echo "AutoDetect=off"
    if [ "$NGPU" -gt 0 ]; then
        for nd in "${NODES[@]}"; do
            for ((i = 0; i < NGPU; i++)); do ln -sfn /dev/null "$BASE/dev/$nd-gpu$i"; done
            files=${SLURM_LOCAL_GPU_FILES:-$BASE/dev/$nd-gpu[0-$((NGPU - 1))]}
            echo "NodeName=$nd Name=gpu Type=$GPU_TYPE File=$files"
        done
    fi
} > "$BASE/etc/gres.conf.new"

{
cat <<EOF
# Generated by start-slurm.sh - single-machine CI cluster, no systemd, no cgroups.
ClusterName=localci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again
# (default 120 s); 10 s keeps "scontrol requeue" tests short.
AuthInfo=cred_expire=10
SlurmctldPort=6817
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool/slurmd-%n
SlurmctldPidFile=$BASE/run/slurmctld.slurm.pid
SlurmdPidFile=$BASE/run/slurmd-%n.slurm.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: track tasks via /proc parentage, no CPU binding/confinement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd, so no sacct; finished jobs go to a text log and stay visible to
# "scontrol show job" for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
SwitchType=switch/none
# Debian's OpenMPI 4.1 only speaks PMIx to srun (no PMI-1/PMI-2 components), so
# pmix is the default: a plain "srun ./mpi_prog" works ("--mpi=pmi2"/"none" do not).
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Re-evaluate pending jobs often (defaults 60 s / 30 s) so requeued or
# dependency-released jobs start within seconds.
SchedulerParameters=sched_interval=10,bf_interval=5
# Accept a node description that differs from the hardware (e.g. more CPUs than nproc).
SlurmdParameters=config_overrides
ReturnToService=2
# Reject impossible requests at submit time instead of leaving them pending forever.
EnforcePartLimits=ALL
MailProg=/bin/true
# CI-friendly timings
KillWait=5
MinJobAge=3600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
Waittime=0
$GRES_TYPES
EOF
if [ "$NNODES" -gt 1 ]; then
    # Several slurmds on one host: the mpi/pmix plugin puts its per-step client dir
    # (spmix_appdir_<uid>_<job>.<step>) under TmpFS, so give each node its own.
    echo "TmpFS=$BASE/tmp/%n"
    # Per-node TMPDIR, and no OpenMPI shared memory between "nodes": vader names its
    # segments <hostname>.<job>.<local rank>, which collide across fake nodes (segfault).
    echo "TaskProlog=$BASE/etc/taskprolog.sh"
fi
n=0
for nd in "${NODES[@]}"; do
    n=$((n + 1))
    port=$((6817 + n))    # 6818 for the first/only node (Slurm's default SlurmdPort)
    echo "NodeName=$nd NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$port CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM$GRES_NODE Features=$FEATURES State=UNKNOWN"
done
echo "PartitionName=gpu Nodes=$NODELIST Default=YES MaxTime=INFINITE State=UP"
echo "PartitionName=cpu Nodes=$NODELIST Default=NO  MaxTime=INFINITE State=UP"
} > "$BASE/etc/slurm.conf.new"

if [ "$NNODES" -gt 1 ]; then
    cat > "$BASE/etc/taskprolog.sh" <<EOF
#!/bin/sh
# Generated by start-slurm.sh (SLURM_LOCAL_NODES>1): lines "export K=V" go into each task's env.
echo "export TMPDIR=$BASE/tmp/\$SLURMD_NODENAME"
echo "export OMPI_MCA_btl=self,tcp"
EOF
    chmod 755 "$BASE/etc/taskprolog.sh"
fi

cat > "$BASE/etc/cgroup.conf.new" <<EOF
# Generated by start-slurm.sh - cgroups are NOT used (proctrack/linuxproc, task/none);
# this file only pins harmless values in case something reads it.
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF

changed=0
for f in slurm.conf gres.conf cgroup.conf; do
    if ! cmp -s "$BASE/etc/$f.new" "$CONF_DIR/$f"; then
        changed=1
        install -m 644 "$BASE/etc/$f.new" "$CONF_DIR/$f"
    fi
    rm -f "$BASE/etc/$f.new"
done

# ---------------------------------------------------------------------------
# 4. munge (run as the munge user, foreground mode under setsid so $! is munged)
# ---------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /etc/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0600 /etc/munge/munge.key

if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answering"
else
    setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
        >> "$BASE/log/munged.out" 2>&1 < /dev/null &
    echo $! > "$BASE/run/munged.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged did not come up (see /var/log/munge/munged.log)"
    log "munged started, pid $(cat "$BASE/run/munged.pid")"
fi

# ---------------------------------------------------------------------------
# 5. slurmctld + slurmd(s)
# ---------------------------------------------------------------------------
all_alive=1
pid_alive "$BASE/run/slurmctld.pid" slurmctld || all_alive=0
for nd in "${NODES[@]}"; do pid_alive "$BASE/run/slurmd-$nd.pid" slurmd || all_alive=0; done
if [ "$changed" = 0 ] && [ "$all_alive" = 1 ] && scontrol ping >/dev/null 2>&1; then
    log "slurmctld/slurmd already running with this config - nothing to do"
    exit 0
fi

# stop whatever we recorded earlier (also slurmds of a different node count)
for f in "$BASE"/run/slurmd-*.pid; do
    case "$f" in *.slurm.pid) continue ;; esac
    [ -e "$f" ] && stop_pidfile "$f" slurmd
done
stop_pidfile "$BASE/run/slurmctld.pid" slurmctld

# -D: stay in the foreground (we background it and record the real PID);
# -i: ignore unreadable/incompatible state files.
setsid /usr/sbin/slurmctld -D -i >> "$BASE/log/slurmctld.out" 2>&1 < /dev/null &
echo $! > "$BASE/run/slurmctld.pid"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || die "slurmctld not responding (see $BASE/log/slurmctld.log)"
log "slurmctld up, pid $(cat "$BASE/run/slurmctld.pid")"

for nd in "${NODES[@]}"; do
    mkdir -p "$BASE/spool/slurmd-$nd"
    [ "$NNODES" -gt 1 ] && mkdir -p "$BASE/tmp/$nd" && chmod 1777 "$BASE/tmp/$nd"
    setsid /usr/sbin/slurmd -D -N "$nd" >> "$BASE/log/slurmd-$nd.out" 2>&1 < /dev/null &
    echo $! > "$BASE/run/slurmd-$nd.pid"
done

ready=0
for _ in $(seq 150); do
    ready=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u | grep -cE ' (idle|mixed|allocated)' || true)
    [ "$ready" -ge "$NNODES" ] && break
    sleep 0.2
done
if [ "$ready" -lt "$NNODES" ]; then
    sinfo -N -l || true
    die "only $ready/$NNODES node(s) ready; see $BASE/log/slurmd-*.log"
fi
log "slurmd up: $(for nd in "${NODES[@]}"; do printf '%s(pid %s) ' "$nd" "$(cat "$BASE/run/slurmd-$nd.pid")"; done)"
sinfo
