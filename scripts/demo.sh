#!/usr/bin/env bash
# The main job, end to end: build everything, run a small C program under `mana launch`, take a
# checkpoint, SIGKILL the program, `mana restart` it, and show that the result equals an
# uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mana=$PWD/bin/mana
app=$PWD/native/out/test/memloop
work=$(mktemp -d "${TMPDIR:-/tmp}/mana-demo-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; "$mana" command --coord-port "$(cat "$work/port" 2>/dev/null || echo 1)" --quit >/dev/null 2>&1 || true' EXIT
cd "$work"
steps=400

echo "== 1. uninterrupted run (no mana)"
set +e; "$app" reference.out $steps 10; ref_status=$?; set -e
echo "   exit status $ref_status, $(wc -l < reference.out) lines of results"

echo "== 2. the same program under mana launch"
"$mana" coordinator --port 0 --port-file port --ckptdir ckpt --daemon
port=$(cat port)
"$mana" launch --join --coord-port "$port" --ckptdir ckpt -- "$app" result.out $steps 10 &
launch_pid=$!
sleep 2
echo "== 3. checkpoint (mana command --bcheckpoint)"
"$mana" command --coord-port "$port" --bcheckpoint
pid=$("$mana" command --coord-port "$port" --list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log((v.procs??v)[0].pid)})')
sleep 0.5
echo "== 4. SIGKILL the program (pid $pid) after $(wc -l < result.out) lines"
kill -9 "$pid"
wait "$launch_pid" || true
echo "== 5. mana restart"
"$mana" inspect ckpt/latest | head -12
set +e; "$mana" restart ckpt --join --coord-port "$port"; status=$?; set -e
echo "== 6. compare"
echo "   exit status: uninterrupted $ref_status, restarted $status"
if cmp -s reference.out result.out && [ "$status" = "$ref_status" ]; then
  echo "   RESULT: identical ($(wc -c < result.out) bytes, sha256 $(sha256sum < result.out | cut -c1-16))"
else
  echo "   RESULT: DIFFERENT" >&2; exit 1
fi
