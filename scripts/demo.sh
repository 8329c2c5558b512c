#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start: installs the dependencies, builds godwit, and migrates a live
# image on loopback: a seeder serves a generated image while a writer keeps
# changing it through the seeder's NBD export; a leecher pre-copies it,
# finalizes once it has caught up, and completes in post-copy. Prints the
# downtime, the pull throughput and whether the checksums match.
#   scripts/demo.sh [SIZE_MB]   (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-256}

scripts/install-deps.sh
echo "demo: building (build-demo/)"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-demo -j "$(nproc)" >/dev/null

bin=build-demo
dir=$(mktemp -d "${TMPDIR:-/tmp}/godwit-demo-XXXXXX")
pids=()
finish() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap finish EXIT
die() { echo "demo: FAILED: $*" >&2; exit 1; }

wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done
}
event() { grep -h "\"event\":\"$1\"" "$dir/leecher.events" 2>/dev/null | tail -1; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }

echo "demo: generating a ${size_mb} MiB image"
head -c $((size_mb << 20)) /dev/urandom >"$dir/source.img"

# Port 0: the kernel picks free ports; the ready events say which.
"$bin/seeder/godwit-seeder" --image "$dir/source.img" --listen 127.0.0.1:0 \
  --nbd-socket "$dir/source.sock" --exit-on-complete --log-format json \
  >"$dir/seeder.events" 2>"$dir/seeder.log" &
pids+=($!)
wait_for 10 grep -q '"event":"ready"' "$dir/seeder.events" ||
  die "seeder did not start: $(cat "$dir/seeder.log")"
seeder_port=$(grep -h '"event":"ready"' "$dir/seeder.events" | field port)

"$bin/bench/godwit-writer" --socket "$dir/source.sock" --rate-mbps 10 --block 4K --hot-percent 95 \
  >"$dir/writer.out" 2>&1 &
writer=$!
pids+=($writer)
echo "demo: source app writing 10 MB/s (95% to a hot region) through the seeder's NBD export"

start=$(date +%s%N)
"$bin/leecher/godwit-leecher" --seeder "127.0.0.1:$seeder_port" --image "$dir/dest.img" \
  --nbd-socket "$dir/dest.sock" --control 127.0.0.1:0 --log-format json \
  >"$dir/leecher.events" 2>"$dir/leecher.log" &
leecher=$!
pids+=($leecher)

first_pass_done() {
  local p
  p=$(event progress) || return 1
  [ -n "$p" ] && [ "$(echo "$p" | field pulled_once)" = "$(echo "$p" | field chunks_total)" ]
}
wait_for 300 first_pass_done || die "pre-copy did not finish its first pass: $(tail -3 "$dir/leecher.log")"
precopy_ns=$(($(date +%s%N) - start))
echo "demo: first pre-copy pass done in $((precopy_ns / 1000000)) ms; re-pulling what the app re-dirtied"
sleep 3
p=$(event progress)
echo "demo: dirty rate $(echo "$p" | field dirty_rate) chunks/s, re-dirtied $(echo "$p" | field chunks_redirtied) chunks so far;" \
  "Finalize now would transfer $(echo "$p" | field finalize_dirty_chunks) chunks"
echo "demo: pausing the source app"
kill -TERM "$writer"
wait "$writer" 2>/dev/null || true

echo "demo: Finalize (SIGUSR1 to the leecher)"
kill -USR1 "$leecher"
has_event() { [ -n "$(event "$1")" ]; }
wait_for 30 has_event finalized || die "Finalize failed: $(tail -3 "$dir/leecher.log")"
wait_for 300 has_event complete || die "post-copy did not complete: $(tail -3 "$dir/leecher.log")"
downtime=$(event finalized | field downtime_us)
pulled=$(event complete | field bytes_pulled)
dirty=$(event finalized | field dirty_chunks)
kill -TERM "$leecher"
wait "$leecher" 2>/dev/null || true

src=$(sha256sum <"$dir/source.img" | cut -d' ' -f1)
dst=$(sha256sum <"$dir/dest.img" | cut -d' ' -f1)
echo
echo "  image            ${size_mb} MiB, $(cat "$dir/writer.out" | field writes) writes by the source app"
echo "  downtime         ${downtime} us (Finalize to export ready; ${dirty} dirty chunks at the freeze)"
awk -v b="${pulled:-0}" -v ns="$precopy_ns" -v mb="$size_mb" \
  'BEGIN { printf "  throughput       first pass %.1f MB/s; %.1f MB pulled in total (re-pulls included)\n", mb * 1.048576 / (ns / 1e9), b / 1e6 }'
echo "  source sha256    $src"
echo "  dest   sha256    $dst"
[ "$src" = "$dst" ] || die "checksums differ"
echo "demo: checksums match — migration complete"
