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
for i in $(seq "$runs"); do
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
echo "dd write (zeros, conv=fsync): $(median < "$tmp/ddw")   dd read (cold): $(median < "$tmp/ddr")"
for spec in "0-random" "1-random" "3-random" "1-mixed" "3-mixed"; do
  w=$(median < "$tmp/w-$spec"); r=$(median < "$tmp/r-$spec")
  echo "image level/data $spec: write $w ($(echo "$w $(median < "$tmp/ddw")" | awk '{printf "%.2f", $1/$2}') of dd)  read $r ($(echo "$r $(median < "$tmp/ddr")" | awk '{printf "%.2f", $1/$2}') of dd)"
done
rm -rf "$tmp"
