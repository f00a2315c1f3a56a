#!/bin/sh
# Image write/read throughput against dd to the same directory (design doc B3), as medians of
# interleaved runs because a VM's disk is noisy. Usage: image/bench.sh DIR MIB RUNS
# Run from native/ after `make -f image/test.mk out/test_image`. Drops the page cache (root).
set -eu
dir=${1:-out/bench}; mib=${2:-1024}; runs=${3:-5}
mkdir -p "$dir"
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
drop() { sync; [ -w /proc/sys/vm/drop_caches ] && echo 3 > /proc/sys/vm/drop_caches || true; }
tmp=$(mktemp -d)
# dd of /dev/zero is the stated baseline, but a virtual disk may store zero blocks for free
# (qemu detect-zeroes), so also time dd of random bytes held in RAM (tmpfs).
src=$(mktemp -p /dev/shm mana-bench-XXXXXX)
trap 'rm -f "$src"; rm -rf "$tmp"' EXIT
head -c "${mib}M" /dev/urandom > "$src"
for i in $(seq "$runs"); do
  rm -f "$dir/dd.out"; drop
  dd if="$src" of="$dir/dd.out" bs=1M conv=fsync 2>&1 |
    awk '/copied/{print $1/$(NF-3)/1e6}' >> "$tmp/ddrand"
  rm -f "$dir/dd.out"
  rm -f "$dir/dd.out"; drop
  dd if=/dev/zero of="$dir/dd.out" bs=1M count="$mib" conv=fsync 2>&1 |
    awk '/copied/{print $1/$(NF-3)/1e6}' >> "$tmp/ddw"   # bytes / seconds
  drop
  dd if="$dir/dd.out" of=/dev/null bs=1M 2>&1 | awk '/copied/{print $1/$(NF-3)/1e6}' >> "$tmp/ddr"
  rm -f "$dir/dd.out"
  for spec in "0 random" "1 random" "3 random" "1 mixed" "3 mixed"; do
    set -- $spec
    drop
    out/test_image --bench "$dir" "$mib" "$1" "$2" |
      sed -n 's/.*write \([0-9]*\) MB.*read \([0-9]*\) MB.*/\1 \2/p' |
      { read -r w r; echo "$w" >> "$tmp/w-$1-$2"; echo "$r" >> "$tmp/r-$1-$2"; }
  done
done
echo "MiB=$mib runs=$runs (median MB/s)"
echo "dd write (zeros, conv=fsync): $(median < "$tmp/ddw")   dd write (random from tmpfs): $(median < "$tmp/ddrand")   dd read (cold): $(median < "$tmp/ddr")"
for spec in "0-random" "1-random" "3-random" "1-mixed" "3-mixed"; do
  w=$(median < "$tmp/w-$spec"); r=$(median < "$tmp/r-$spec")
  ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
  echo "image level/data $spec: write $w ($(ratio "$w" "$(median < "$tmp/ddw")") of dd zeros, $(ratio "$w" "$(median < "$tmp/ddrand")") of dd random)  read $r ($(ratio "$r" "$(median < "$tmp/ddr")") of dd)"
done
