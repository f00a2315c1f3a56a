#!/usr/bin/env bash
# The "mpiexec" that scripts/mpich-suite.sh hands to MPICH's runtests (-mpiexec=...).
# runtests calls it as:  mpiexec.sh -n NP [extra args] ./program [program args]
#
# Environment (set by mpich-suite.sh):
#   MANA_SUITE_LAUNCHER   mpich | openmpi          which mpirun to use
#   MANA_SUITE_MANA       0 | 1                    run the job under `mana launch`
#   MANA_SUITE_REPO       the mana checkout        (for bin/mana and mpi-shim/out/lib)
#   MANA_SUITE_CKPTDIR    parent of the per-job checkpoint directories for mana launch
#   MANA_SUITE_CKPTLOG    file to which one line "generations<TAB>exit status<TAB>args" is
#                         appended per job
#   MANA_SUITE_INTERVAL   optional checkpoint interval (seconds) for mana launch -i
#   MANA_SUITE_PORTDIR    directory for the coordinator's port files
#   MANA_SUITE_PROGRESS   file to which one line per job is appended (progress display)
#   MPIEXEC_TIMEOUT       set by runtests per test; honoured by both mpiruns. We add an
#                         outer guard (timeout + 30 s, then KILL) in case a launcher hangs.
set -u

launcher=${MANA_SUITE_LAUNCHER:-mpich}
case "$launcher" in
  mpich) mpirun=(mpirun.mpich) ;;
  openmpi)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1
    mpirun=(mpirun.openmpi --oversubscribe)
    ;;
  *) echo "mpiexec.sh: unknown MANA_SUITE_LAUNCHER=$launcher" >&2; exit 2 ;;
esac

# progress: one line per job ("dir/prog np exit-status seconds") for mpich-suite.sh to show
# while runtests runs (runtests' own TAP/JUnit output is block-buffered)
t_start=$(date +%s.%N)
progress() {
  [ -n "${MANA_SUITE_PROGRESS:-}" ] || return 0
  local np=? prog=? a prev=
  for a in "$@"; do
    if [ "$prev" = -n ] || [ "$prev" = -np ]; then np=$a; fi
    case "$a" in ./*) prog=${a#./}; break ;; esac
    prev=$a
  done
  printf '%s/%s %s %s %s\n' "$(basename "$PWD")" "$prog" "$np" "$rc" \
    "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$MANA_SUITE_PROGRESS"
}

guard=()
if [ -n "${MPIEXEC_TIMEOUT:-}" ] && [ "${MPIEXEC_TIMEOUT}" -gt 0 ] 2>/dev/null; then
  guard=(timeout --kill-after=10 $((MPIEXEC_TIMEOUT + 30)))
fi

if [ "${MANA_SUITE_MANA:-0}" = 1 ]; then
  repo=${MANA_SUITE_REPO:?MANA_SUITE_REPO not set}
  # Binaries from `mana mpicc` and from plain mpicc.mpich both find mana's libmpi.so.12 /
  # libmpich.so.12 this way (DESIGN.md: "run unmodified via LD_LIBRARY_PATH").
  export LD_LIBRARY_PATH="$repo/mpi-shim/out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  launch=("$repo/bin/mana" launch --new-coordinator --coord-port 0)
  if [ -n "${MANA_SUITE_PORTDIR:-}" ]; then
    launch+=(--port-file "$MANA_SUITE_PORTDIR/port.$$")
  fi
  ckdir=
  if [ -n "${MANA_SUITE_CKPTDIR:-}" ]; then
    ckdir=$MANA_SUITE_CKPTDIR/job.$$
    mkdir -p "$ckdir"
    launch+=(--ckptdir "$ckdir")
  fi
  if [ -n "${MANA_SUITE_INTERVAL:-}" ]; then
    launch+=(-i "$MANA_SUITE_INTERVAL")
  fi
  "${guard[@]}" "${launch[@]}" -- "${mpirun[@]}" "$@"
  rc=$?
  [ -n "${MANA_SUITE_PORTDIR:-}" ] && rm -f "$MANA_SUITE_PORTDIR/port.$$"
  if [ -n "$ckdir" ]; then
    # how many checkpoint generations this job wrote (with --interval), then drop the images
    if [ -n "${MANA_SUITE_CKPTLOG:-}" ]; then
      gens=$(find "$ckdir" -maxdepth 1 -name 'gen-*' -type d 2>/dev/null | wc -l)
      printf '%s\t%s\t%s\n' "$gens" "$rc" "$*" >>"$MANA_SUITE_CKPTLOG"
    fi
    rm -rf "$ckdir"
  fi
  progress "$@"
  exit $rc
fi

"${guard[@]}" "${mpirun[@]}" "$@"
rc=$?
progress "$@"
exit $rc
