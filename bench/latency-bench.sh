#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# First-chunk latency after Finalize: a seeder on an idle image (use 1 GiB
# or more, so the reads reach chunks the one background worker has not), the link
# emulator at RTT_MS, a leecher with one background worker; Finalize right
# away, then godwit-first-chunk reads remote chunks (and again, local).
# Also reports the emulated link's own round trip (a 1-byte ping-pong
# through a second emulator at the same RTT), so the leecher's overhead
# is the first read minus link_rtt_us.
# LINK=direct (RTT_MS 0 only) leaves both emulators out: the leecher dials
# the seeder and the ping goes straight to its echo, to show what the
# emulator's own relay adds ("link":"direct" in the line).
# READ=BYTES reads that many bytes at each place (default 4K; more than a
# chunk spans several; a BUILD of before 2026-12-02 18:36 cannot).
#   bench/latency-bench.sh BUILD SIZE_MB RTT_MS [CHUNK]
#   LINK=direct bench/latency-bench.sh BUILD SIZE_MB 0 [CHUNK]
set -euo pipefail
build=$1 size_mb=$2 rtt=$3 chunk=${4:-262144} link=${LINK:-linkem}
case $link in
linkem) ;;
direct) [ "$rtt" = 0 ] || { echo "latency-bench.sh: LINK=direct needs RTT_MS 0" >&2; exit 2; } ;;
*) echo "latency-bench.sh: LINK is linkem or direct, not '$link'" >&2; exit 2 ;;
esac
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
# ports below the ephemeral range (32768+), so no outgoing connection holds one
port() { local p; for p in $(shuf -i 20000-32000 -n 20); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.02; done; }
head -c $((size_mb << 20)) /dev/urandom >"$dir/s.img"
sync "$dir/s.img"
sp=$(port); lp=$(port); cp=$(port)
"$build/seeder/godwit-seeder" --image "$dir/s.img" --listen "127.0.0.1:$sp" --chunk-size "$chunk" 2>/dev/null &
pids+=($!)
wait_port "$sp"
# relay PORT TARGET_PORT: an emulator from PORT to TARGET_PORT (LINK=linkem)
relay() {
  [ "$link" = linkem ] || return 0
  "$build/bench/godwit-linkem" --listen "127.0.0.1:$1" --target "127.0.0.1:$2" --rtt-ms "$rtt" 2>/dev/null &
  pids+=($!)
  wait_port "$1"
}
relay "$lp" "$sp"
[ "$link" = linkem ] || lp=$sp
"$build/leecher/godwit-leecher" --seeder "127.0.0.1:$lp" --image "$dir/d.img" --nbd-socket "$dir/d.sock" \
  --control "127.0.0.1:$cp" --workers 1 --batch "$chunk" 2>/dev/null &
pids+=($!)
wait_port "$cp"
pp=$(port); pl=$(port)
relay "$pl" "$pp"
[ "$link" = linkem ] || pl=$pp
link_rtt=$("$build/bench/godwit-tcp-baseline" --ping --listen-port "$pp" --via-port "$pl" |
  sed 's/.*"rtt_us":\([0-9.]*\).*/\1/')
"$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" finalize >/dev/null
"$build/bench/godwit-first-chunk" --socket "$dir/d.sock" --chunk-size "$chunk" --count 50 ${READ:+--length "$READ"} |
  sed "s/^{/{\"link\":\"$link\",\"rtt_ms\":$rtt,\"link_rtt_us\":$link_rtt,\"chunk_size\":$chunk,/"
