#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compression (--compress) against none, on real images over emulated links.
#   bench/compress-bench.sh [BUILD_DIR] [IMAGE_DIR] [RUNS] [RATES] [MODES]
# IMAGE_DIR holds the images (bench/compress-images.sh makes ext4.img,
# core.img and random.img; it is run if the directory has no .img).
# RATES: godwit-linkem --rate-mbps caps in MB/s, one line all connections
# share (--shared-rate); 0: plain loopback (default "12 60 0": about 100
# Mbit/s, 500 Mbit/s, unlimited). MODES: --compress values (default "off
# auto zstd"). For each image and rate, RUNS rounds, the modes interleaved
# within each round: a whole migration (seeder, leecher, wait-local,
# Finalize, wait-complete, images compared). One JSON line per image, rate
# and mode: migration time (median, min, max), its ratio to "off" of the
# same rounds (median of the per-round ratios), bytes on the wire and the
# bytes they decoded to (the leecher's complete event; zero ranges are in
# neither), and CPU seconds per GiB of the image of each daemon.
set -euo pipefail
build=${1:-build}
images=${2:-/tmp/godwit-compress-images}
runs=${3:-3}
rates=${4:-"12 60 0"}
modes=${5:-"off auto zstd"}
ticks=$(getconf CLK_TCK)
for b in seeder/godwit-seeder leecher/godwit-leecher ctl/godwit-ctl bench/godwit-linkem; do
  [ -x "$build/$b" ] || { echo "compress-bench: build $build/$b first (cmake --build $build)" >&2; exit 1; }
done
ls "$images"/*.img >/dev/null 2>&1 || "$(dirname "$0")/compress-images.sh" "$images" >&2
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

# ready EVENTS PID FIELD: FIELD of the daemon's ready event (port 0 bound)
ready() {
  local line
  for _ in $(seq 400); do
    line=$(grep -m1 '"event":"ready"' "$1" 2>/dev/null) && { jq -r ".$3" <<<"$line"; return; }
    kill -0 "$2" 2>/dev/null || { echo "compress-bench: process $2 died (see $1)" >&2; exit 1; }
    sleep 0.05
  done
  echo "compress-bench: no ready event in $1" >&2; exit 1
}
cpu_s() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' /proc/$1/stat; }
median() { sort -g | awk '{a[NR]=$1} END {printf "{\"median\":%g,\"min\":%g,\"max\":%g}", a[int((NR+1)/2)], a[1], a[NR]}'; }

# one_run IMAGE RATE MODE: prints "seconds wire_bytes decoded_bytes seeder_cpu_s leecher_cpu_s"
one_run() {
  local image=$1 rate=$2 mode=$3 seeder leecher linkem="" target start end
  rm -f "$dir/dest.img" "$dir/dest.img.godwit-state" "$dir"/*.events
  cp --reflink=auto "$image" "$dir/source.img" 2>/dev/null || cp "$image" "$dir/source.img"
  cat "$dir/source.img" >/dev/null   # page-cached, as the source of a live migration is
  "$build/seeder/godwit-seeder" --image "$dir/source.img" --listen 127.0.0.1:0 --log-format json \
    --state-file "$dir/seeder.state" >"$dir/seeder.events" 2>&1 &
  seeder=$!; pids+=($seeder)
  target="127.0.0.1:$(ready "$dir/seeder.events" $seeder port)"
  if [ "$rate" != 0 ]; then
    "$build/bench/godwit-linkem" --listen 127.0.0.1:0 --target "$target" --rate-mbps "$rate" \
      --shared-rate --log-format json >"$dir/linkem.events" 2>&1 &
    linkem=$!; pids+=($linkem)
    target="127.0.0.1:$(ready "$dir/linkem.events" $linkem port)"
  fi
  start=$(date +%s%N)
  "$build/leecher/godwit-leecher" --seeder "$target" --image "$dir/dest.img" --compress "$mode" \
    --control 127.0.0.1:0 --log-format json >"$dir/leecher.events" 2>&1 &
  leecher=$!; pids+=($leecher)
  local control="127.0.0.1:$(ready "$dir/leecher.events" $leecher control_port)"
  "$build/ctl/godwit-ctl" --control "$control" --timeout 900 wait-local >/dev/null
  "$build/ctl/godwit-ctl" --control "$control" finalize >/dev/null
  "$build/ctl/godwit-ctl" --control "$control" --timeout 900 wait-complete >/dev/null
  end=$(date +%s%N)
  local cpu="$(cpu_s $seeder) $(cpu_s $leecher)" done
  for _ in $(seq 100); do grep -q '"event":"complete"' "$dir/leecher.events" && break; sleep 0.05; done
  done=$(grep -m1 '"event":"complete"' "$dir/leecher.events")
  cmp -s "$dir/source.img" "$dir/dest.img" || { echo "compress-bench: images differ ($image, $mode)" >&2; exit 1; }
  kill $leecher $seeder $linkem 2>/dev/null; wait $leecher $seeder $linkem 2>/dev/null || true
  rm -f "$dir/seeder.state"
  echo "$(awk -v ns=$((end - start)) 'BEGIN {printf "%.3f", ns / 1e9}') $(jq -r .bytes_pulled <<<"$done") $(jq -r .bytes_decoded <<<"$done") $cpu"
}

for image in "$images"/*.img; do
  name=$(basename "$image" .img)
  gib=$(stat -c %s "$image" | awk '{printf "%.6f", $1 / 1073741824}')
  for rate in $rates; do
    for mode in $modes; do : >"$dir/results.$mode"; done
    for r in $(seq "$runs"); do
      for mode in $modes; do one_run "$image" "$rate" "$mode" >>"$dir/results.$mode"; done
    done
    first=${modes%% *}
    for mode in $modes; do
      col() { awk -v n="$1" '{print $n}' "$dir/results.$mode" | median; }
      per_gib() { awk -v n="$1" -v g="$gib" '{print $n / g}' "$dir/results.$mode" | median; }
      ratio=$(paste "$dir/results.$mode" "$dir/results.$first" | awk '{print $1 / $6}' | median)
      echo "{\"image\":\"$name\",\"rate_mb_s\":$rate,\"compress\":\"$mode\",\"runs\":$runs,\"seconds\":$(col 1),\"time_ratio_to_$first\":$ratio,\"wire_bytes\":$(col 2),\"decoded_bytes\":$(col 3),\"seeder_cpu_s_per_gib\":$(per_gib 4),\"leecher_cpu_s_per_gib\":$(per_gib 5)}"
    done
  done
done
