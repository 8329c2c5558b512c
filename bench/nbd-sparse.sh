#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sparse copies over NBD: nbdcopy of a 2 GiB image with 10% data (1 MiB of
# data every 10 MiB, holes between) from godwit-seeder's export and from
# `nbdkit file` on the same file, in the same run, taking turns run by run;
# also from the seeder with --no-extents (what nbdcopy did before the seeder
# answered block status). Prints, as JSON, the median / min / max
# milliseconds of each, the destination's allocated MiB, and the ratio of
# the seeder's median to nbdkit's (1.00 is parity).
#   bench/nbd-sparse.sh [BUILD_DIR] [RUNS]
set -euo pipefail
build=${1:-build}
runs=${2:-5}
for tool in nbdcopy nbdkit jq; do
  command -v $tool >/dev/null || { echo "nbd-sparse: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$build/seeder/godwit-seeder" ] || { echo "nbd-sparse: build $build/seeder/godwit-seeder first" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
truncate -s 2G "$dir/image"
head -c 1M /dev/urandom >"$dir/mib"
for mib in $(seq 0 10 2047); do
  dd if="$dir/mib" of="$dir/image" bs=1M seek="$mib" conv=notrunc status=none
done
sync

"$build/seeder/godwit-seeder" --image "$dir/image" --listen 127.0.0.1:0 \
  --nbd-socket "$dir/seeder.sock" 2>"$dir/seeder.log" &
pids+=($!)
nbdkit -U "$dir/nbdkit.sock" -f --threads 16 file "$dir/image" &
pids+=($!)
for s in seeder nbdkit; do
  for _ in $(seq 200); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done
  [ -S "$dir/$s.sock" ] || { echo "nbd-sparse: $s did not start" >&2; exit 1; }
done

# One timed nbdcopy: measure NAME appends "MS ALLOCATED_MIB" to $dir/NAME.
measure() {
  local sock=$1 flags=() start end
  [ "$1" = seeder-no-extents ] && sock=seeder flags=(--no-extents)
  rm -f "$dir/out.img"
  sync
  start=$(date +%s%N)
  nbdcopy "${flags[@]}" "nbd+unix:///?socket=$dir/$sock.sock" "$dir/out.img" ||
    { echo "nbd-sparse: nbdcopy from $1 failed" >&2; exit 1; }
  end=$(date +%s%N)
  cmp -s "$dir/image" "$dir/out.img" || { echo "nbd-sparse: the copy from $1 differs" >&2; exit 1; }
  echo "$(((end - start) / 1000000)) $(($(stat -c %b "$dir/out.img") / 2048))" >>"$dir/$1"
}

# stats FILE: median / min / max of the milliseconds, and the median allocation, as JSON
stats() {
  sort -n "$1" | awk '{t[NR]=$1; a[NR]=$2} END {m=int((NR+1)/2);
    printf "{\"median_ms\":%d,\"min_ms\":%d,\"max_ms\":%d,\"dest_allocated_mib\":%d}", t[m], t[1], t[NR], a[m]}'
}

names=(seeder nbdkit seeder-no-extents)
# Round robin, starting one export later each round: a burst of other load
# on this machine is spread over every export, not charged to one.
for i in $(seq 0 $((runs - 1))); do
  for j in "${!names[@]}"; do measure "${names[$(((i + j) % ${#names[@]}))]}"; done
done
seeder=$(stats "$dir/seeder") nbdkit=$(stats "$dir/nbdkit") before=$(stats "$dir/seeder-no-extents")
ratio() { jq -rn --argjson a "$1" --argjson b "$2" '($a.median_ms / $b.median_ms * 100 | round) / 100'; }
echo "{\"op\":\"nbdcopy-sparse\",\"size_mib\":2048,\"data_mib\":205,\"runs\":$runs,\"source_allocated_mib\":$(($(stat -c %b "$dir/image") / 2048)),\"godwit_seeder\":$seeder,\"nbdkit_file\":$nbdkit,\"godwit_seeder_no_extents\":$before,\"seeder_vs_nbdkit\":$(ratio "$seeder" "$nbdkit"),\"no_extents_vs_nbdkit\":$(ratio "$before" "$nbdkit")}"
