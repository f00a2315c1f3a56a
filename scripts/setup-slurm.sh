#!/usr/bin/env bash
# A one-node Slurm (Debian's slurm-wlm 22.05 + munge) on this machine, for mana's srun tests
# and for trying docs/slurm.md. Idempotent: packages are installed only when missing, daemons
# started only when not running, and it returns once `sinfo` shows the node up.
#
# A Slurm configured by someone else is left alone: when /etc/slurm/slurm.conf exists and was
# not written by this script, it is used as it is (and this script only checks that it
# answers). Ours carries the MARKER line below.
#
# Why CPUs=8 on a 2-core machine: the tests run 3- and 4-rank jobs, and Slurm refuses a job
# step with more tasks than allocated CPUs. Declaring more CPUs than there are cores
# (SlurmdParameters=config_overrides makes slurmd accept the configured figure) is the
# smallest change that lets them run oversubscribed, the way `mpirun --oversubscribe` does;
# OverSubscribe=FORCE on the partition would only share CPUs between jobs, not within one.
#
# Runs as root (the daemons need it). Daemon logs and state: /var/tmp/mana-slurm.
set -euo pipefail

MARKER="# written by mana scripts/setup-slurm.sh"
DIR=/var/tmp/mana-slurm
CONF=/etc/slurm/slurm.conf
say() { echo "mana setup-slurm: $*"; }
die() { echo "mana setup-slurm: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts slurmctld/slurmd); try sudo bash $0"

pkgs=(slurmd slurmctld slurm-client munge)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_up() { sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'; }

if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
  # someone else's Slurm: use it, never rewrite it
  for _ in $(seq 1 20); do node_up && { say "using the Slurm configured in $CONF"; exit 0; }; sleep 1; done
  die "$CONF (not written by mana) exists but sinfo shows no node up; start its slurmctld/slurmd, or move it away to let this script configure a one-node Slurm"
fi

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /etc/slurm
host=$(hostname -s)
want=$(cat <<EOF
$MARKER; remove this line to keep the script from rewriting the file
ClusterName=mana
# by address: a fresh machine's host name need not resolve
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups (containers rarely delegate them): processes are tracked by their session/parentage
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
# short timeouts: a killed job's node is usable again quickly
KillWait=5
MinJobAge=30
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" >"$CONF"
  changed=1
  say "wrote $CONF (node $host, CPUs=8)"
fi

# munge: the package's postinst makes a key; make one when it did not
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  # as the munge user when it exists (munged refuses root without --force)
  if id munge >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; else /usr/sbin/munged --force; fi
  for _ in $(seq 1 20); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munged did not start (see /var/log/munge/munged.log)"
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ((changed)); then
  # a new configuration: restart our daemons so they read it
  for d in slurmd slurmctld; do
    if running "$DIR/$d.pid"; then kill "$(cat "$DIR/$d.pid")"; fi
  done
  for _ in $(seq 1 20); do running "$DIR/slurmd.pid" || running "$DIR/slurmctld.pid" || break; sleep 0.5; done
fi
running "$DIR/slurmctld.pid" || /usr/sbin/slurmctld
running "$DIR/slurmd.pid" || /usr/sbin/slurmd

for _ in $(seq 1 30); do
  if node_up; then say "Slurm is up: node $host ($(sinfo -h -N -o '%T'))"; exit 0; fi
  # a node left down/drained by an earlier run comes back with an explicit resume
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(down|drained|draining)'; then
    scontrol update nodename="$host" state=resume 2>/dev/null || true
  fi
  sleep 1
done
die "Slurm did not come up within 30 s (logs in $DIR/log)"
