#!/usr/bin/env bash
# The MPI job, end to end: a 2-rank MPI program under `mana launch mpirun.mpich`, a checkpoint
# of both ranks, SIGKILL of every rank, `mana restart --mpi openmpi` on the other MPI
# implementation, and the result compared with an uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${MANA_DEMO_NO_SETUP:-}" = 1 ] || bash scripts/setup.sh
mana=$PWD/bin/mana
src=$PWD/test/programs/mpi/steps.c
work=$(mktemp -d "${TMPDIR:-/tmp}/mana-demo-mpi-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; "$mana" command --coord-port "$(cat "$work/port" 2>/dev/null || echo 1)" --quit >/dev/null 2>&1 || true' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
steps=150 pause_ms=20

echo "== 1. build with mana mpicc; uninterrupted run (native MPICH)"
"$mana" mpicc -O2 -o steps "$src"
mpicc.mpich -O2 -o steps-native "$src"
mpirun.mpich -n 2 ./steps-native reference.out $steps $pause_ms
echo "   $(head -1 reference.out)"

echo "== 2. the same job under mana launch mpirun.mpich -n 2"
"$mana" coordinator --port 0 --port-file port --ckptdir ckpt --daemon
port=$(cat port)
"$mana" launch --join --coord-port "$port" --ckptdir ckpt -- mpirun.mpich -n 2 ./steps result.out $steps $pause_ms &
launch_pid=$!
sleep 1.5
echo "== 3. checkpoint both ranks (mana command --bcheckpoint)"
"$mana" command --coord-port "$port" --bcheckpoint
pids=$("$mana" command --coord-port "$port" --list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log((v.procs??v).filter(p=>!p.launcher).map(p=>p.pid).join(" "))})')
echo "== 4. SIGKILL every rank ($pids)"
kill -9 $pids
wait "$launch_pid" || true
echo "== 5. mana restart --mpi openmpi (a new mpirun.openmpi, a new lower half)"
"$mana" inspect ckpt/latest | head -6
set +e; "$mana" restart ckpt --mpi openmpi --join --coord-port "$port"; status=$?; set -e
echo "== 6. compare"
if cmp -s reference.out result.out && [ "$status" = 0 ]; then
  echo "   RESULT: identical to the uninterrupted MPICH run ($(sha256sum < result.out | cut -c1-16)), restarted on Open MPI"
else
  echo "   RESULT: DIFFERENT (exit status $status)" >&2; diff reference.out result.out >&2 || true; exit 1
fi
