#!/usr/bin/env bash
# B1's latency on a shared machine: pingpong_blocks.c (10th percentile of 2000 blocks of 500
# round trips) natively and on each given build of mana's shim, interleaved, one line per round:
#   bench/mpi/pingpong_ab.sh ROUNDS mpich|openmpi LIBDIR...
# (LIBDIR: some checkout's mpi-shim/out/lib; compare builds of two commits in the same run).
# The line ends with a second native run: rounds whose two native figures differ a lot had the
# host change how fast the two vCPUs talk (docs/benchmarks.md) and compare nothing.
set -eu
[ $# -ge 3 ] || { echo "usage: pingpong_ab.sh ROUNDS mpich|openmpi LIBDIR..."; exit 2; }
rounds=$1 flavour=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpicc.mpich -O2 -o "$dir/pp-mpich" "$here/pingpong_blocks.c"
mpicc.openmpi -O2 -o "$dir/pp-openmpi" "$here/pingpong_blocks.c"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
p10() { awk '{print $5}'; }
one() { # LIBDIR, or nothing for native
  if [ $# -eq 0 ]; then
    if [ "$flavour" = mpich ]; then mpirun.mpich -n 2 "$dir/pp-mpich" 2000 500 | p10
    else mpirun.openmpi -n 2 "$dir/pp-openmpi" 2000 500 | p10; fi
  else
    local lib; lib=$(cd "$1" && pwd -P) # the shim finds its own directory by name
    if [ "$flavour" = mpich ]; then LD_LIBRARY_PATH=$lib MANA_MPI=mpich mpirun.mpich -n 2 "$dir/pp-mpich" 2000 500 | p10
    else mpirun.openmpi -n 2 -x LD_LIBRARY_PATH="$lib" -x MANA_MPI=openmpi "$dir/pp-mpich" 2000 500 | p10; fi
  fi
}
for ((r = 0; r < rounds; r++)); do
  n=$(one)
  line="$flavour native $n µs"
  for l in "$@"; do
    v=$(one "$l")
    line="$line | $l $v µs ($(awk -v a="$v" -v b="$n" 'BEGIN {printf "%.3f", a / b}'))"
  done
  echo "$line | native again $(one) µs"
done
