#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# NBD serving throughput: nbdcopy reads and writes the same image served by
# godwit-seeder, by godwit-leecher (after a migration, every chunk local),
# by `nbdkit file` and by `qemu-nbd`, in the same run, taking turns run by
# run. Prints MB/s for each (median of RUNS, min, max) and the ratios to
# nbdkit and qemu-nbd.
#   bench/nbd-serve.sh [BUILD_DIR] [SIZE_MB] [RUNS]
set -euo pipefail
build=${1:-build}
size_mb=${2:-256}
runs=${3:-5}
for tool in nbdcopy nbdkit qemu-nbd; do
  command -v $tool >/dev/null || { echo "nbd-serve: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
for b in seeder/godwit-seeder leecher/godwit-leecher ctl/godwit-ctl; do
  [ -x "$build/$b" ] || { echo "nbd-serve: build $build/$b first" >&2; exit 1; }
done

dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
head -c $((size_mb << 20)) /dev/urandom >"$dir/source"
for name in seeder origin nbdkit qemu; do cp "$dir/source" "$dir/$name.img"; done
sync
# ports below the ephemeral range (32768+), so no outgoing connection holds one
port() { local p; for p in $(shuf -i 20000-32000 -n 20); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }

sp=$(port); cp=$(port)
: >"$dir/failed"
"$build/seeder/godwit-seeder" --image "$dir/seeder.img" --listen "127.0.0.1:$sp" \
  --nbd-socket "$dir/seeder.sock" 2>"$dir/seeder.log" &
pids+=($!)
nbdkit -U "$dir/nbdkit.sock" -f --threads 16 file "$dir/nbdkit.img" &
pids+=($!)
qemu-nbd -k "$dir/qemu.sock" -f raw --persistent --shared 8 --cache=writeback "$dir/qemu.img" &
pids+=($!)
for s in seeder nbdkit qemu; do
  for _ in $(seq 200); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done
done
# The leecher's export: migrate from a second seeder (Finalize freezes it),
# then serve the migrated image.
op=$(port)
"$build/seeder/godwit-seeder" --image "$dir/origin.img" --listen "127.0.0.1:$op" 2>/dev/null &
pids+=($!)
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$op) 2>/dev/null && break; sleep 0.05; done
"$build/leecher/godwit-leecher" --seeder "127.0.0.1:$op" --image "$dir/leecher.img" \
  --nbd-socket "$dir/leecher.sock" --control "127.0.0.1:$cp" 2>"$dir/leecher.log" &
pids+=($!)
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$cp) 2>/dev/null && break; sleep 0.05; done
"$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" wait-local >/dev/null
"$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" finalize >/dev/null
"$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" wait-complete >/dev/null

# stats: median / min / max of the MB/s figures on stdin, as JSON
stats() { sort -n | awk '{a[NR]=$1} END {printf "{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f}", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { sed 's/.*"median":\([0-9.]*\).*/\1/'; }

# One timed nbdcopy: measure read|write NAME appends its MB/s to $dir/OP.NAME.
# Our images are flushed first, outside the timing: the kernel's background
# writeback of earlier runs' dirty pages must not land on one export's runs.
measure() {
  local start end uri="nbd+unix:///?socket=$dir/$2.sock"
  sync "$dir"/*.img
  start=$(date +%s%N)
  if [ "$1" = read ]; then nbdcopy "$uri" null: || echo "$2 $1" >>"$dir/failed"
  else nbdcopy "$dir/source" "$uri" || echo "$2 $1" >>"$dir/failed"; fi
  end=$(date +%s%N)
  awk -v mb="$size_mb" -v ns=$((end - start)) 'BEGIN {printf "%.1f\n", mb * 1.048576 / (ns / 1e9)}' >>"$dir/$1.$2"
}

names=(seeder leecher nbdkit qemu)
for op in read write; do
  # Round robin, starting one export later each round: a burst of other load
  # on this machine is spread over every export, not charged to one.
  for i in $(seq 0 $((runs - 1))); do
    for j in "${!names[@]}"; do measure $op "${names[$(((i + j) % ${#names[@]}))]}"; done
  done
  declare -A result=()
  for name in "${names[@]}"; do result[$name]=$(stats <"$dir/$op.$name"); done
  [ ! -s "$dir/failed" ] || { echo "nbd-serve: nbdcopy failed: $(cat "$dir/failed")" >&2; exit 1; }
  ratio() { awk -v a="$(echo "${result[$1]}" | median)" -v b="$(echo "${result[$2]}" | median)" 'BEGIN {printf "%.2f", a / b}'; }
  echo "{\"op\":\"$op\",\"size_mb\":$size_mb,\"runs\":$runs,\"godwit_seeder\":${result[seeder]},\"godwit_leecher\":${result[leecher]},\"nbdkit_file\":${result[nbdkit]},\"qemu_nbd\":${result[qemu]},\"seeder_vs_nbdkit\":$(ratio seeder nbdkit),\"leecher_vs_nbdkit\":$(ratio leecher nbdkit),\"seeder_vs_qemu\":$(ratio seeder qemu),\"leecher_vs_qemu\":$(ratio leecher qemu)}"
done
