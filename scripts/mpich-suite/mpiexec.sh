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
#   MANA_SUITE_CKPT       checkpoint-restart mode: restart on this MPI (mpich | openmpi);
#                         see ckpt_job below and docs/mpich-suite.md
#   MANA_SUITE_HOLDLIB    libmanasuite_hold.so (hold.c), for MANA_SUITE_CKPT
#   MANA_SUITE_CKPTRESULTS  MANA_SUITE_CKPT: file to which one line per job is appended:
#                         dir<TAB>prog<TAB>np<TAB>args<TAB>status<TAB>exit<TAB>detail, status
#                         restarted | not-taken | failed
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

# ---------------------------------------------------------------------------------------
# Checkpoint-restart mode. One job of runtests becomes:
#   1. calibration: the job under mana launch with libmanasuite_hold.so counting each rank's
#      MPI calls (its output is dropped);
#   2. the job again, each rank held before its (count/2)-th call: once every rank is held
#      (or some are and no other has been for a second: they wait for a held one), a
#      checkpoint is asked for; its presuspend lets the ranks go on, the shim drains them, the
#      image is written and the ranks stay parked (hold.c) until
#   3. every process of the job is SIGKILLed once the generation is committed, and
#   4. `mana restart GEN --mpi $MANA_SUITE_CKPT` runs the job to its end.
# What runtests sees: the output of 2 (up to the checkpoint) and of 4, and 4's exit status.
# If the job ends before a checkpoint could be taken, its own output and status are passed on
# and the job is recorded as not-taken. mana's own lines go to the job's log, not the output.
now_s() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }'; }
descendants() {   # pid and all its descendants
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END { n = split(root, q, " "); out = root
          for (i = 1; i <= n; i++) { m = split(kids[q[i]], k, " ")
            for (j = 1; j <= m; j++) { q[++n] = k[j]; out = out " " k[j] } }
          print out }'
}
mana_lines() {   # stdin -> stdout without mana's own lines (those go to the file $1)
  local l
  while IFS= read -r l || [ -n "$l" ]; do
    case "$l" in
      "mana launch: "*|"mana restart: "*|"mana command: "*) printf '%s\n' "$l" >>"$1" ;;
      *) printf '%s\n' "$l" ;;
    esac
  done
}

ckpt_job() {
  local repo=$1; shift
  local job=${MANA_SUITE_CKPTDIR:?}/job.$$
  local np=? a prev= prog=? pargs=() seen=0
  for a in "$@"; do
    if [ $seen = 1 ]; then pargs+=("$a"); continue; fi
    if [ "$prev" = -n ] || [ "$prev" = -np ]; then np=$a; fi
    case "$a" in ./*) prog=${a#./}; seen=1 ;; esac
    prev=$a
  done
  [[ "$np" =~ ^[0-9]+$ ]] || np=1
  rm -rf "$job"; mkdir -p "$job/calib" "$job/hold" "$job/ck"
  local log=$job/mana.log
  # the hold library only in the launched jobs, not in `mana restart` and its launcher
  local preload="${MANA_SUITE_HOLDLIB:?}${LD_PRELOAD:+:$LD_PRELOAD}"
  local launch=("$repo/bin/mana" launch --new-coordinator --coord-port 0)
  local status=failed detail= r

  # 1. calibration
  LD_PRELOAD=$preload MANA_SUITE_HOLD_DIR=$job/calib "${guard[@]}" "${launch[@]}" --port-file "$job/port0" \
    --ckptdir "$job/ck0" -- "${mpirun[@]}" "$@" >"$job/calib.out" 2>&1
  local crc=$? at= c
  for ((r = 0; r < np; r++)); do
    c=$(cat "$job/calib/count.$r" 2>/dev/null || echo 0)
    at+="${at:+,}$((c / 2))"
  done
  echo "calibration: exit $crc, calls per rank $(cd "$job/calib" && cat count.* 2>/dev/null | tr '\n' ' '), hold at $at" >>"$log"
  if ! ls "$job/calib" | grep -q '^count\.'; then
    # no rank reached MPI_Finalize (an unsupported call, an abort, a hang): that run is the
    # result, not checkpointed (a second run would only repeat it)
    mana_lines "$log" <"$job/calib.out"
    ckpt_record "$crc" not-taken "no rank reached MPI_Finalize in the counting run"
    return
  fi

  # 2. the held run
  local t0; t0=$(now_s)
  LD_PRELOAD=$preload MANA_SUITE_HOLD_DIR=$job/hold MANA_SUITE_HOLD_AT=$at "${guard[@]}" "${launch[@]}" \
    --port-file "$job/port" --ckptdir "$job/ck" -- "${mpirun[@]}" "$@" >"$job/run.out" 2>&1 &
  local lpid=$! limit=${MPIEXEC_TIMEOUT:-60} held=0 last=0 tlast; tlast=$(now_s)
  while kill -0 "$lpid" 2>/dev/null; do
    held=$(ls "$job/hold" | grep -c '^held\.')
    [ "$held" -ge "$np" ] && break
    if [ "$held" != "$last" ]; then last=$held; tlast=$(now_s); fi
    # some held, the others quiet for a second: they wait for a held rank
    [ "$held" -gt 0 ] && awk -v a="$tlast" -v b="$(now_s)" 'BEGIN { exit !(b - a > 1) }' && break
    awk -v a="$t0" -v b="$(now_s)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && break
    sleep 0.05
  done
  local committed=0 tries=0 cpid=
  if kill -0 "$lpid" 2>/dev/null; then
    echo "held: $held of $np ranks after $(since "$t0") s" >>"$log"
    while :; do
      "$repo/bin/mana" command --port-file "$job/port" --bcheckpoint --json >"$job/ckpt.json" 2>&1 &
      cpid=$!
      # committed = the generation directory is there; the checkpointed ranks stay parked
      # (hold.c), so --bcheckpoint, which waits for them to resume, is not waited for
      while kill -0 "$cpid" 2>/dev/null && [ ! -f "$job/ck/gen-000001/manifest.json" ]; do
        kill -0 "$lpid" 2>/dev/null || break
        awk -v a="$t0" -v b="$(now_s)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && break
        sleep 0.02
      done
      if [ -f "$job/ck/gen-000001/manifest.json" ]; then committed=1; break; fi
      if kill -0 "$cpid" 2>/dev/null; then kill -KILL "$cpid" 2>/dev/null; fi
      wait "$cpid" 2>/dev/null
      # asked before every rank said HELLO: ask again
      if grep -q 'MPI ranks have started' "$job/ckpt.json" && [ $((tries += 1)) -lt 20 ] &&
         kill -0 "$lpid" 2>/dev/null; then
        sleep 0.1; continue
      fi
      break
    done
    echo "checkpoint: $( [ $committed = 1 ] && echo committed || echo "not committed: $(tr '\n' ' ' <"$job/ckpt.json")") after $(since "$t0") s" >>"$log"
  fi
  if [ $committed = 1 ]; then
    # 3. kill the whole job: launcher, Hydra's proxies / orted, ranks, and the command
    kill -KILL $(descendants "$lpid") ${cpid:+$(descendants "$cpid")} 2>/dev/null
    wait "$lpid" 2>/dev/null; wait "$cpid" 2>/dev/null
    mana_lines "$log" <"$job/run.out"
    # 4. restart
    "${guard[@]}" "$repo/bin/mana" restart "$job/ck/gen-000001" --new-coordinator --coord-port 0 \
      --port-file "$job/port2" --mpi "$MANA_SUITE_CKPT" 2>&1 | mana_lines "$log"
    rc=${PIPESTATUS[0]}
    status=restarted; detail="held $held/$np at $at"
  elif ! kill -0 "$lpid" 2>/dev/null; then
    wait "$lpid"; rc=$?
    mana_lines "$log" <"$job/run.out"
    status=not-taken; detail="the job ended first (held $held/$np at $at)"
  else
    kill -KILL $(descendants "$lpid") ${cpid:+$(descendants "$cpid")} 2>/dev/null
    wait "$lpid" 2>/dev/null
    mana_lines "$log" <"$job/run.out"
    detail="checkpoint failed: $(tr '\n\t' '  ' <"$job/ckpt.json" | cut -c1-300)"
    echo "mpich-suite: $detail"
    rc=1
  fi
  echo "held run and restart: $(since "$t0") s" >>"$log"
  ckpt_record "$rc" "$status" "$detail"
}

ckpt_record() {   # exit status detail (uses ckpt_job's locals)
  rc=$1
  echo "result: $2, exit $1" >>"$log"
  if [ -n "${MANA_SUITE_CKPTRESULTS:-}" ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$PWD")" "$prog" "$np" "${pargs[*]}" \
      "$2" "$1" "$3" >>"$MANA_SUITE_CKPTRESULTS"
  fi
  # keep the job's log next to the results, drop the images
  [ -n "${MANA_SUITE_CKPTLOGDIR:-}" ] && cp "$log" "$MANA_SUITE_CKPTLOGDIR/$(basename "$PWD")-$prog-$np-$$.log"
  rm -rf "$job"
}

if [ -n "${MANA_SUITE_CKPT:-}" ]; then
  repo=${MANA_SUITE_REPO:?MANA_SUITE_REPO not set}
  export LD_LIBRARY_PATH="$repo/mpi-shim/out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  rc=0
  ckpt_job "$repo" "$@"
  progress "$@"
  exit $rc
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
