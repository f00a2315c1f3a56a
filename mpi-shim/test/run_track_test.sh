#!/bin/bash
# Builds and checks lh_track.so the way the lower world uses it:
#   1. test_track under LD_PRELOAD=lh_track.so:libmimalloc.so.2 (one line per check)
#   2. the same run under strace: the only brk calls allowed are brk(NULL) queries
#   3. unless --no-bench: the cost, with and without lh_track in the preload (medians of
#      interleaved runs, since other work may share the machine)
# Exits 0 only if 1 and 2 pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lib=$root/out/lib/lh_track.so
mi=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
reps=${TRACK_BENCH_REPS:-7}

make -s -C "$root" -f lower/track.mk track
[ -e "$mi" ] || { echo "FAIL $mi is missing (apt-get install libmimalloc2.0)"; exit 1; }
status=0

echo "== test_track (LD_PRELOAD=lh_track.so:libmimalloc.so.2)"
LD_PRELOAD="$lib:$mi" "$root/out/test/test_track" || status=1

echo "== brk under strace -f"
if command -v strace >/dev/null; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # --seccomp-bpf stops the tracee only at brk, so the run keeps its normal speed.
    if strace -f --seccomp-bpf -qq -e trace=brk -e signal=none -o "$log" -E LD_PRELOAD="$lib:$mi" \
        "$root/out/test/test_track" >/dev/null; then
        traced=ok
    else
        traced=failed
    fi
    sed 's/^/     /' "$log"
    calls=$(grep -c 'brk(' "$log" || true)
    moves=$(grep 'brk(' "$log" | grep -vc 'brk(NULL)' || true)
    if [ "$traced" = ok ] && [ "$calls" -ge 1 ] && [ "$moves" -eq 0 ]; then
        echo "ok   brk never moved       $calls brk call(s), all brk(NULL) queries (ld.so's start-up, libc's first sbrk(0)); test passed under strace"
    else
        echo "FAIL brk moved             $calls brk call(s), $moves with an argument; test under strace: $traced"
        status=1
    fi
else
    echo "skip strace is not installed"
fi

if [ "${1:-}" != --no-bench ]; then
    echo "== cost (median of $reps interleaved runs; ns per operation)"
    declare -A base track
    for ((i = 0; i < reps; i++)); do
        while read -r name ns; do base[$name]+="$ns "; done \
            < <(LD_PRELOAD="$mi" "$root/out/test/bench_track")
        while read -r name ns; do track[$name]+="$ns "; done \
            < <(LD_PRELOAD="$lib:$mi" "$root/out/test/bench_track")
    done
    median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    printf '     %-12s %14s %16s %7s\n' what mimalloc "lh_track+mimalloc" ratio
    for name in malloc_free mmap_munmap thread; do
        b=$(echo "${base[$name]}" | median)
        t=$(echo "${track[$name]}" | median)
        printf '     %-12s %14s %16s %7s\n' "$name" "$b" "$t" "$(awk -v b="$b" -v t="$t" 'BEGIN {printf "%.2f", t / b}')"
    done
    echo "     (malloc_free: 1M pairs 16 B-64 KiB, thread CPU time; mmap_munmap: 100k pairs of"
    echo "      64 KiB, thread CPU time; thread: 2000 create+join, wall time)"
fi

[ $status -eq 0 ] && echo "PASS run_track_test" || echo "FAIL run_track_test"
exit $status
