#!/usr/bin/env bash
# A single-node Slurm on this machine, for the slurm-marked tests and for trying `make tableN LAUNCHER=slurm`:
#   tests/cluster/slurm.sh up     install slurm-wlm and munge if missing, start munged, slurmctld and slurmd
#   tests/cluster/slurm.sh down   stop what `up` started
#   tests/cluster/slurm.sh status
# Both are idempotent. The config, state and logs live in $DADA_SLURM_DIR (default /tmp/dada-slurm); clients find
# the config through /etc/slurm/slurm.conf, linked there when no other config is (else export SLURM_CONF).
# The node is this host with its CPUs and memory, in one partition `debug`; accounting is off, so sacct fails.
# Needs root (or sudo) for apt-get, munged (runs as munge) and the Slurm daemons.
set -euo pipefail

DIR=${DADA_SLURM_DIR:-/tmp/dada-slurm}
CONF=$DIR/slurm.conf
LINK=/etc/slurm/slurm.conf
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
HOST=$(hostname -s)

running() { [ -s "$1" ] && $SUDO kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    echo "installing slurm-wlm and munge (apt-get)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    if [ ! -s /etc/munge/munge.key ]; then
        $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        $SUDO chown munge:munge /etc/munge/munge.key
        $SUDO chmod 400 /etc/munge/munge.key
    fi
    $SUDO install -d -o munge -g munge -m 755 /run/munge
    $SUDO install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    $SUDO runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"  # started here: `down` stops it
}

write_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$CONF" <<CONF
# Written by tests/cluster/slurm.sh: a single-node cluster on $HOST.
ClusterName=dada-test
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10  # a requeued job (preempted, timed out) may start again after 10 s, not 120
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
    if [ ! -e "$LINK" ]; then
        $SUDO mkdir -p "$(dirname "$LINK")"
        $SUDO ln -s "$CONF" "$LINK"
        touch "$DIR/linked"
    elif [ "$(readlink -f "$LINK")" != "$(readlink -f "$CONF")" ]; then
        echo "note: $LINK is another cluster's config; use this one with: export SLURM_CONF=$CONF"
    fi
}

up() {
    install_packages
    mkdir -p "$DIR"
    start_munge
    if running "$DIR/slurmctld.pid" && running "$DIR/slurmd.pid"; then
        echo "Slurm is already up (config $CONF)"
        return
    fi
    write_conf
    running "$DIR/slurmctld.pid" || $SUDO slurmctld -c -f "$CONF"
    running "$DIR/slurmd.pid" || $SUDO slurmd -f "$CONF"
    for _ in $(seq 60); do
        if SLURM_CONF=$CONF sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "Slurm is up: node $HOST, partition debug (config $CONF)"
            return
        fi
        sleep 0.5
    done
    echo "Slurm did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
    exit 1
}

stop() {  # stop the daemon whose pid file is $1 and wait for it to end
    running "$1" || return 0
    local pid
    pid=$(cat "$1")
    $SUDO kill "$pid"
    for _ in $(seq 40); do $SUDO kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    $SUDO kill -9 "$pid" 2>/dev/null || true
}

down() {
    [ -d "$DIR" ] || { echo "nothing to stop"; return; }
    stop "$DIR/slurmd.pid"
    stop "$DIR/slurmctld.pid"
    stop "$DIR/munged.pid"
    rm -f "$DIR/munged.pid"
    if [ -e "$DIR/linked" ]; then
        $SUDO rm -f "$LINK"
        rm -f "$DIR/linked"
    fi
    echo "Slurm is down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) SLURM_CONF=$CONF sinfo && SLURM_CONF=$CONF squeue ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
