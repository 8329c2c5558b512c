#!/usr/bin/env bash
# NBD serving throughput: nbdcopy reads (and writes) the same image served
# by godwit-seeder and by `nbdkit file` in the same run; prints MB/s for
# each (median of RUNS, with min and max) and the ratio to nbdkit.
#   bench/nbd-serve.sh [BUILD_DIR] [SIZE_MB] [RUNS]
set -euo pipefail
build=${1:-build}
size_mb=${2:-256}
runs=${3:-5}
seeder=$build/seeder/godwit-seeder
command -v nbdcopy >/dev/null || { echo "nbd-serve: nbdcopy missing (libnbd-bin)" >&2; exit 1; }
command -v nbdkit >/dev/null || { echo "nbd-serve: nbdkit missing" >&2; exit 1; }
[ -x "$seeder" ] || { echo "nbd-serve: build $seeder first" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
head -c $((size_mb << 20)) /dev/urandom >"$dir/image"
cp "$dir/image" "$dir/source"

"$seeder" --image "$dir/image" --listen 127.0.0.1:0 --nbd-socket "$dir/seeder.sock" 2>"$dir/seeder.log" &
pids+=($!)
nbdkit -U "$dir/nbdkit.sock" -f file "$dir/image" &
pids+=($!)
for s in seeder nbdkit; do
  for _ in $(seq 100); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done
done

# median / min / max of MB/s figures on stdin
stats() { sort -n | awk '{a[NR]=$1} END {printf "{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f}", a[int((NR+1)/2)], a[1], a[NR]}'; }

measure() { # measure read|write SOCKET
  local i start end
  for i in $(seq "$runs"); do
    start=$(date +%s%N)
    if [ "$1" = read ]; then
      nbdcopy "nbd+unix:///?socket=$2" null:
    else
      nbdcopy "$dir/source" "nbd+unix:///?socket=$2"
    fi
    end=$(date +%s%N)
    echo "$size_mb $start $end" | awk '{printf "%.1f\n", $1 * 1048576 / 1e6 / (($3 - $2) / 1e9)}'
  done | stats
}

for op in read write; do
  ours=$(measure $op "$dir/seeder.sock")
  theirs=$(measure $op "$dir/nbdkit.sock")
  ratio=$(median() { sed 's/.*"median":\([0-9.]*\).*/\1/'; }
    awk -v a="$(echo "$ours" | median)" -v b="$(echo "$theirs" | median)" 'BEGIN { printf "%.2f", a / b }')
  echo "{\"op\":\"$op\",\"size_mb\":$size_mb,\"runs\":$runs,\"godwit_seeder\":$ours,\"nbdkit_file\":$theirs,\"ratio\":$ratio}"
done
