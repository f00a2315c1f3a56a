#!/usr/bin/env bash
# Per-call cost of mana's MPI shim, in user-mode cycles and instructions (perf stat), for each
# mode of calls.c, natively and through mana, on both lower halves:
#   bench/mpi/calls.sh [LIBDIR [MODE...]]      (LIBDIR: mpi-shim/out/lib of this checkout)
# Counts, unlike wall time, hardly move on a loaded machine. Each figure is per loop iteration,
# with a run of zero iterations (start-up, MPI_Init) subtracted.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# canonical: the shim drops its own directory from the lower half's LD_LIBRARY_PATH by name
lib=$(cd "${1:-$here/../../mpi-shim/out/lib}" && pwd -P)
shift || true
modes=${*:-1 2 3 4}
n=2000000
command -v perf >/dev/null || { echo "calls.sh needs perf (apt-get install linux-perf)"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpicc.mpich -O2 -o "$dir/calls-mpich" "$here/calls.c"
mpicc.openmpi -O2 -o "$dir/calls-openmpi" "$here/calls.c"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
count() { perf stat -x, -e cycles:u,instructions:u "$@" 2>&1 >/dev/null | awk -F, '/cycles|instructions/ {printf "%s ", $1}'; }
for flavour in mpich openmpi; do
  native=("$dir/calls-$flavour")
  mana=(env LD_LIBRARY_PATH="$lib" MANA_MPI=$flavour "$dir/calls-mpich")
  read -r c0 i0 <<<"$(count "${native[@]}" 0 1)"
  read -r mc0 mi0 <<<"$(count "${mana[@]}" 0 1)"
  for m in $modes; do
    read -r c i <<<"$(count "${native[@]}" $n "$m")"
    read -r mc mi <<<"$(count "${mana[@]}" $n "$m")"
    awk -v f=$flavour -v m="$m" -v n=$n -v c=$((c - c0)) -v i=$((i - i0)) -v mc=$((mc - mc0)) -v mi=$((mi - mi0)) 'BEGIN {
      printf "%-8s mode %s: native %5.0f cycles %5.0f instructions | mana %5.0f cycles %5.0f instructions | +%.0f cycles +%.0f instructions\n",
        f, m, c / n, i / n, mc / n, mi / n, (mc - c) / n, (mi - i) / n }'
  done
done
