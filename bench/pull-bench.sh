#!/usr/bin/env bash
# Pull throughput and downtime of a full migration on loopback.
#   bench/pull-bench.sh [BUILD_DIR] [SIZE_MB] [RUNS] [GRID]
# GRID is "WORKERSxCHANNELS ..." (default "1x1 4x1 4x4 16x4 64x8"). For each
# cell: a seeder on an idle SIZE_MB image (page-cached), a leecher pulling
# it; prints the median MB/s of RUNS pre-copies (min, max), the leecher's
# peak RSS, then Finalize with 1% of the chunks dirty (DIRTY_PCT) and its
# downtime (no last Sync: the freeze carries the whole dirty set).
# One JSON line per cell, plus the loopback TCP baseline of the same run.
# RTT_MS=N puts godwit-linkem with that round-trip time between them;
# CHUNK=BYTES sets the chunk size. Also reports CPU seconds per GiB of
# seeder and leecher (first run of each cell).
set -euo pipefail
build=${1:-build-release}
size_mb=${2:-1024}
runs=${3:-3}
grid=${4:-"1x1 4x1 4x4 16x4 64x8"}
chunk=${CHUNK:-262144}   # CHUNK=bytes: the seeder's chunk size
ticks=$(getconf CLK_TCK)
for b in seeder/godwit-seeder leecher/godwit-leecher bench/godwit-ctl bench/godwit-writer bench/godwit-tcp-baseline; do
  [ -x "$build/$b" ] || { echo "pull-bench: build $build/$b first (cmake --build $build)" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
head -c $((size_mb << 20)) /dev/urandom >"$dir/source.img"
sync "$dir/source.img"   # on disk: the seeder's flushes must not pay for our writes
cat "$dir/source.img" >/dev/null

port() { local p; for p in $(shuf -i 20000-60000 -n 20); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }
median() { sort -n | awk '{a[NR]=$1} END {printf "{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f}", a[int((NR+1)/2)], a[1], a[NR]}'; }

baseline=$("$build/bench/godwit-tcp-baseline" --seconds 3 | field mb_per_s)
echo "{\"baseline\":\"loopback TCP, one stream\",\"mb_per_s\":$baseline}"

# cpu_per_gib PID: user+system CPU seconds of PID per GiB of image
cpu_per_gib() { awk -v t="$ticks" -v mb="$size_mb" '{printf "%.2f", ($14 + $15) / t / (mb / 1024)}' /proc/$1/stat; }

# one_run W C FINALIZE: prints "MB/s RSS_KB SEEDER_CPU LEECHER_CPU [downtime_us dirty]"
one_run() {
  local sp cp seeder leecher rss
  sp=$(port); cp=$(port)
  rm -f "$dir/dest.img" "$dir/dest.img.godwit-state"
  "$build/seeder/godwit-seeder" --image "$dir/source.img" --listen "127.0.0.1:$sp" \
    --chunk-size "$chunk" --nbd-socket "$dir/s.sock" 2>"$dir/seeder.log" &
  seeder=$!; pids+=($seeder)
  for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
  local target="127.0.0.1:$sp"
  if [ "${RTT_MS:-0}" -gt 0 ]; then
    local lp; lp=$(port)
    "$build/bench/godwit-linkem" --listen "127.0.0.1:$lp" --target "$target" --rtt-ms "$RTT_MS" 2>/dev/null &
    pids+=($!); linkem=$!
    target="127.0.0.1:$lp"
  fi
  local start=$(date +%s%N)
  "$build/leecher/godwit-leecher" --seeder "$target" --image "$dir/dest.img" \
    --workers "$1" --channels "$2" --control "127.0.0.1:$cp" --sync-interval 600000 --skip-final-sync \
    2>"$dir/leecher.log" &
  leecher=$!; pids+=($leecher)
  for _ in $(seq 1000); do (exec 3<>/dev/tcp/127.0.0.1/$cp) 2>/dev/null && break; sleep 0.005; done
  "$build/bench/godwit-ctl" --control "127.0.0.1:$cp" --timeout 600 wait-local >"$dir/ctl.out"
  local end=$(date +%s%N)
  rss=$(awk '/VmHWM/ {print $2}' /proc/$leecher/status)
  local cpu="$(cpu_per_gib $seeder) $(cpu_per_gib $leecher)"
  local out="$(awk -v mb="$size_mb" -v ns=$((end - start)) 'BEGIN {printf "%.1f", mb * 1.048576 / (ns / 1e9)}') $rss $cpu"
  if [ "$3" = finalize ]; then
    local writes=$(((size_mb << 20) / chunk * ${DIRTY_PCT:-1} / 100))
    [ "$writes" -eq 0 ] || "$build/bench/godwit-writer" --socket "$dir/s.sock" --count "$writes" \
      --block 4K --hot-percent 0 --rate-mbps 0 >/dev/null
    local fin=$("$build/bench/godwit-ctl" --control "127.0.0.1:$cp" finalize)
    out="$out $(echo "$fin" | field downtime_us) $(echo "$fin" | field dirty_chunks)"
    "$build/bench/godwit-ctl" --control "127.0.0.1:$cp" wait-complete >/dev/null
    cmp -s "$dir/source.img" "$dir/dest.img" || { echo "pull-bench: images differ" >&2; exit 1; }
  fi
  kill $leecher $seeder ${linkem:-}; wait $leecher $seeder ${linkem:-} 2>/dev/null || true
  linkem=
  echo "$out"
}

for cell in $grid; do
  w=${cell%x*}; c=${cell#*x}
  : >"$dir/results"
  for r in $(seq "$runs"); do one_run "$w" "$c" $([ "$r" = 1 ] && echo finalize || echo no) >>"$dir/results"; done
  mbs=$(awk '{print $1}' "$dir/results" | median)
  rss=$(awk '{print $2}' "$dir/results" | sort -n | tail -1)
  read -r _ _ seeder_cpu leecher_cpu downtime dirty <"$dir/results"
  ratio=$(awk -v b="$baseline" -v r="$(echo "$mbs" | field median)" 'BEGIN {printf "%.2f", r / b}')
  echo "{\"rtt_ms\":${RTT_MS:-0},\"workers\":$w,\"channels\":$c,\"size_mb\":$size_mb,\"runs\":$runs,\"mb_per_s\":$mbs,\"ratio_to_tcp\":$ratio,\"chunk_size\":$chunk,\"leecher_peak_rss_kb\":$rss,\"seeder_cpu_s_per_gib\":$seeder_cpu,\"leecher_cpu_s_per_gib\":$leecher_cpu,\"downtime_us_1pct\":$downtime,\"dirty_chunks\":$dirty}"
done
