#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (or an existing checkout) to build and test mana:
# system packages when missing, npm dependencies, then the native code and TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests use: both MPI implementations (the lower halves are
# built against each), gfortran for the Fortran bindings, mimalloc for the lower half's heap,
# OpenSSH and iproute2 for the namespace cluster of the multi-node tests (cluster-test/).
pkgs=(build-essential pkg-config python3 python3-numpy libzstd-dev libxxhash-dev zstd util-linux bsdutils procps
      mpich libmpich-dev openmpi-bin libopenmpi-dev gfortran libmimalloc2.0 strace
      openssh-server openssh-client iproute2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "mana setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || { echo "mana setup: node (>= 20) is required; install Debian's nodejs or Node.js 20" >&2; exit 1; }

# npm ci builds the Node addon (binding.gyp) through the package's install script.
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
npm run --silent build

# A one-node Slurm for the srun tests (test/mpi-slurm.test.ts): root only, since it starts
# munged/slurmctld/slurmd; a Slurm configured by someone else is used as it is.
# MANA_SETUP_SLURM=0 leaves Slurm out (the srun tests then skip, or start it themselves as root).
if [ "${MANA_SETUP_SLURM:-1}" != 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/setup-slurm.sh || echo "mana setup: warning: Slurm did not come up (scripts/setup-slurm.sh); the srun tests will try again" >&2
  else
    echo "mana setup: Slurm for the srun tests needs root: sudo bash scripts/setup-slurm.sh"
  fi
fi
echo "mana setup: done (bin/mana is ready)"
