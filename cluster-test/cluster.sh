#!/usr/bin/env bash
# A multi-node test bed on one machine. Each "node" is a set of Linux namespaces (net, uts,
# mount) held open by a `sleep infinity` holder; nodes reach each other and the root namespace
# (the "head") through veth pairs on a bridge. Every node runs a real OpenSSH sshd, so real
# launchers (mpirun over ssh, ssh2 from Node) can be tested across "hosts".
#
#   cluster.sh up DIR N        create N nodes, state and keys in DIR
#   cluster.sh down DIR        remove everything `up` made (safe to repeat, safe after a failed up)
#   cluster.sh exec DIR K CMD  run CMD inside node K (1-based)
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { echo "usage: cluster.sh up DIR N | down DIR | exec DIR K CMD..." >&2; exit 2; }

# One line naming the fix, exit 2: the tests turn this into a skip reason.
prereqs() {
  [ "$EUID" -eq 0 ] || { echo "cluster.sh: needs root (namespaces, veths, bridges): run as root or with sudo" >&2; exit 2; }
  command -v ip >/dev/null || { echo "cluster.sh: no 'ip': apt-get install iproute2" >&2; exit 2; }
  [ -x /usr/sbin/sshd ] || { echo "cluster.sh: no /usr/sbin/sshd: apt-get install openssh-server" >&2; exit 2; }
  command -v ssh-keygen >/dev/null || { echo "cluster.sh: no ssh-keygen: apt-get install openssh-client" >&2; exit 2; }
  command -v unshare >/dev/null && command -v nsenter >/dev/null \
    || { echo "cluster.sh: no unshare/nsenter: apt-get install util-linux" >&2; exit 2; }
}

# Environment the nodes' sshds accept from a client (ssh2's exec env, OpenSSH's SendEnv): MPI
# and mana settings, so a launcher on the head can pass them to what it starts on a node.
FWD_ENV="MANA_* OMPI_MCA_* PMIX_MCA_* UCX_* FI_* MPIR_CVAR_*"

# --- subnet choice --------------------------------------------------------------------------
ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }

# True when 10.A.B.0/24 overlaps any address or non-default route of the root namespace.
subnet_taken() {
  local lo hi cidr net len n m
  lo=$(ip2int "$1.0"); hi=$((lo + 255))
  for cidr in $( { ip -4 -o addr show | awk '{print $4}'; ip -4 route show table all | awk '$1 ~ /^[0-9.]+(\/[0-9]+)?$/ {print $1}'; } ); do
    net=${cidr%/*}; len=${cidr#*/}; [ "$len" = "$cidr" ] && len=32
    n=$(ip2int "$net"); m=$(( len == 0 ? 0 : (0xffffffff << (32 - len)) & 0xffffffff ))
    # two prefixes overlap when either contains the other's start
    if (( (lo & m) == (n & m) )) || (( len >= 24 && n >= lo && n <= hi )); then return 0; fi
  done
  return 1
}

# --- state ----------------------------------------------------------------------------------
# DIR/state is appended to as things are created, so `down` can undo a partial `up`.
record() { echo "$1" >>"$DIR/state"; }

nsid() { readlink "/proc/$1/ns/net" 2>/dev/null || true; }

cmd_down() {
  local st="$DIR/state" line
  [ -f "$st" ] || return 0
  local -a nets=() links=()
  while read -r line; do
    case $line in
      net\ *) nets+=("${line#net }") ;;
      link\ *) links+=("${line#link }") ;;
    esac
  done <"$st"
  # Kill every process inside the nodes' network namespaces (holder, sshd, ssh sessions, ranks
  # left behind): matching by namespace rather than by pid cannot hit a reused pid.
  local round p ns alive
  for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    alive=0
    for p in /proc/[0-9]*; do
      ns=$(readlink "$p/ns/net" 2>/dev/null) || continue
      for n in "${nets[@]}"; do
        if [ "$ns" = "$n" ]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; alive=1; fi
      done
    done
    ((alive)) || break
    sleep 0.1
  done
  # The node-side veth ends die with their namespaces; the host ends and the bridge do not.
  for line in "${links[@]}"; do ip link del "$line" 2>/dev/null || true; done
  rm -f "$DIR/state" "$DIR/cluster.env" "$DIR/cluster.json"
}

cmd_up() {
  local n=$1
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 200)) || die "N must be 1..200"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  [ -e "$DIR/state" ] && die "$DIR already has a cluster (cluster.sh down $DIR first)"
  : >"$DIR/state"
  # any failure from here on (set -e or die) undoes what was made so far
  trap 'rc=$?; if ((rc)); then echo "cluster.sh: up failed, tearing down" >&2; cmd_down; fi' EXIT

  # Names and subnet are derived from DIR's hash and moved on when taken; the lock keeps two
  # concurrent `up`s from picking the same ones.
  exec 9>/run/lock/mana-cluster.lock
  flock 9
  local h i tag subnet
  h=$(printf '%s' "$DIR" | sha256sum | cut -c1-8)
  for ((i = 0; i < 256; i++)); do
    tag=$(printf '%04x' $(( (0x${h:0:4} + i) & 0xffff )))
    ip link show "mcb$tag" >/dev/null 2>&1 || break
  done
  for ((i = 0; i < 4096; i++)); do
    local v=$(( (0x${h:4:4} + i) % (254 * 254) ))
    subnet="10.$((v / 254 + 1)).$((v % 254 + 1))"
    subnet_taken "$subnet" || break
  done
  ip link show "mcb$tag" >/dev/null 2>&1 && die "no free bridge name mcbXXXX"
  subnet_taken "$subnet" && die "no free /24 in 10.0.0.0/8"
  local bridge="mcb$tag" head="$subnet.1"
  ip link add "$bridge" type bridge
  record "link $bridge"
  ip addr add "$head/24" dev "$bridge"
  ip link set "$bridge" up
  flock -u 9

  # hosts file the nodes see as /etc/hosts
  { echo "127.0.0.1 localhost"; echo "$head head"
    for ((k = 1; k <= n; k++)); do echo "$subnet.$((10 + k)) node$k"; done; } >"$DIR/hosts"

  # No name server: the nodes cannot reach the head's, and a lookup that misses DIR/hosts
  # (getent hosts tries IPv6 first) would otherwise wait for DNS timeouts instead of failing.
  echo "# cluster.sh: no DNS inside the nodes; names come from /etc/hosts" >"$DIR/resolv.conf"

  # client key; every node trusts it
  rm -f "$DIR/id_ed25519" "$DIR/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C "mana-cluster" -f "$DIR/id_ed25519"
  cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
  : >"$DIR/known_hosts"
  mkdir -p /run/sshd   # sshd's privilege separation directory (no system sshd running here)

  local pids=() ips=() sshds=() k pid ip ns nd
  for ((k = 1; k <= n; k++)); do
    ip="$subnet.$((10 + k))"; nd="$DIR/node$k"
    mkdir -p "$nd"
    # The holder: its own stdio, so it never keeps a caller's pipe open.
    unshare --net --uts --mount --propagation private sleep infinity </dev/null >/dev/null 2>&1 &
    pid=$!
    disown "$pid"   # its end (at down) is not this shell's business: no "Killed" job notice
    # wait until unshare(2) has happened (the pid's net ns differs from ours)
    for i in $(seq 100); do
      ns=$(nsid "$pid"); [ -n "$ns" ] && [ "$ns" != "$(nsid $$)" ] && break; sleep 0.02
    done
    [ "$ns" != "$(nsid $$)" ] || die "node$k: namespace holder did not start"
    record "net $ns"
    record "pid $k $pid"

    # A boot id of its own: UCX (MPICH's ch4:ucx) takes processes with the same boot id for one
    # host and would join the nodes by shared memory instead of TCP.
    cat /proc/sys/kernel/random/uuid >"$nd/boot_id"
    ip link add "mcv$tag$k" type veth peer name "mcp$tag$k"
    record "link mcv$tag$k"
    ip link set "mcv$tag$k" master "$bridge" up
    ip link set "mcp$tag$k" netns "$pid"
    nsenter -t "$pid" -n -u -m -- sh -c "
      set -e
      hostname node$k
      ip link set lo up
      ip link set mcp$tag$k name eth0
      ip addr add $ip/24 dev eth0
      ip link set eth0 up
      ip route add default via $head
      mount --bind '$DIR/hosts' /etc/hosts
      mount --bind '$DIR/resolv.conf' /etc/resolv.conf
      mount --bind '$nd/boot_id' /proc/sys/kernel/random/boot_id"

    rm -f "$nd/ssh_host_ed25519_key" "$nd/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "node$k" -f "$nd/ssh_host_ed25519_key"
    echo "node$k,$ip $(cut -d' ' -f1,2 "$nd/ssh_host_ed25519_key.pub")" >>"$DIR/known_hosts"
    cat >"$nd/sshd_config" <<EOF
ListenAddress $ip
Port 22
HostKey $nd/ssh_host_ed25519_key
PidFile $nd/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 64
MaxStartups 64
PrintMotd no
PrintLastLog no
UseDNS no
AcceptEnv $FWD_ENV
EOF
    rm -f "$nd/sshd.pid"
    # sshd daemonizes (closing its stdio) and writes its PidFile; -E keeps its log in DIR.
    nsenter -t "$pid" -n -u -m -- /usr/sbin/sshd -f "$nd/sshd_config" -E "$nd/sshd.log"
    for i in $(seq 100); do [ -s "$nd/sshd.pid" ] && break; sleep 0.02; done
    [ -s "$nd/sshd.pid" ] || die "node$k: sshd did not start (see $nd/sshd.log)"
    pids+=("$pid"); ips+=("$ip"); sshds+=("$(cat "$nd/sshd.pid")")
  done

  cat >"$DIR/ssh_config" <<EOF
Host *
  User root
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
  SendEnv $FWD_ENV
EOF
  printf '#!/bin/sh\nexec ssh -F %q "$@"\n' "$DIR/ssh_config" >"$DIR/ssh"
  chmod +x "$DIR/ssh"

  # sshd is up when it accepts TCP on port 22 (bounded: 10 s for all nodes)
  local deadline=$((SECONDS + 10))
  for ip in "${ips[@]}"; do
    until timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22" 2>/dev/null; do
      ((SECONDS < deadline)) || die "sshd on $ip does not accept connections on port 22"
      sleep 0.05
    done
  done

  cat >"$DIR/cluster.env" <<EOF
CLUSTER_DIR=$DIR
CLUSTER_SUBNET=$subnet
CLUSTER_HEAD_IP=$head
CLUSTER_BRIDGE=$bridge
CLUSTER_NODES="${ips[*]}"
CLUSTER_NODE_PIDS="${pids[*]}"
CLUSTER_SSHD_PIDS="${sshds[*]}"
EOF
  {
    printf '{"dir":"%s","subnet":"%s","headIp":"%s","bridge":"%s","nodes":[' "$DIR" "$subnet" "$head" "$bridge"
    for ((k = 1; k <= n; k++)); do
      ((k > 1)) && printf ','
      printf '{"name":"node%d","ip":"%s","pid":%d,"sshdPid":%d}' "$k" "${ips[k-1]}" "${pids[k-1]}" "${sshds[k-1]}"
    done
    printf ']}\n'
  } >"$DIR/cluster.json"
  trap - EXIT
}

cmd_exec() {
  local k=$1; shift
  local pid
  pid=$(awk -v k="$k" '$1 == "pid" && $2 == k {print $3}' "$DIR/state" 2>/dev/null)
  [ -n "$pid" ] || die "no node $k in $DIR"
  exec nsenter -t "$pid" -n -u -m -- "$@"
}

[ $# -ge 2 ] || usage
op=$1 DIR=$2; shift 2
prereqs
case $op in
  up) [ $# -eq 1 ] || usage; cmd_up "$1" ;;
  down) [ $# -eq 0 ] || usage; [ -d "$DIR" ] || exit 0; DIR=$(cd "$DIR" && pwd -P); cmd_down ;;
  exec) [ $# -ge 2 ] || usage; cmd_exec "$@" ;;
  *) usage ;;
esac
