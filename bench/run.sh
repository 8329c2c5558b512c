#!/usr/bin/env bash
# The benchmark run: every figure measured on loopback in one go, next to
# the baselines of the same run. Writes raw JSON lines to
# bench/results/latest.jsonl and a report to bench/results/latest.md.
#   bench/run.sh [--quick]     (quick: well under 3 minutes; full: ~15)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" = --quick ] && quick=true
build=build-release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
out=bench/results
mkdir -p "$out"
json=$out/latest.jsonl
: >"$json"
emit() { tee -a "$json"; }

if $quick; then size=256; runs=1; grid="1x1 4x2 16x4 64x8"; rtts="0 10 50"; rtt_size=64
     sizes_downtime="64 256"
else size=1024; runs=3; grid="1x1 1x2 1x4 1x8 4x1 4x2 4x4 4x8 16x1 16x2 16x4 16x8 64x1 64x2 64x4 64x8"
     rtts="0 1 10 50"; rtt_size=256; sizes_downtime="64 1024 4096"; fi

echo "== baselines" >&2
for s in 1 4; do "$build/bench/godwit-tcp-baseline" --streams $s --seconds 3 | sed 's/^{/{"bench":"tcp",/' | emit; done
img=$(mktemp); head -c $((size << 20)) /dev/urandom >"$img"; cat "$img" >/dev/null
start=$(date +%s%N); cat "$img" >/dev/null; end=$(date +%s%N); rm -f "$img"
awk -v mb=$size -v ns=$((end - start)) 'BEGIN {printf "{\"bench\":\"page_cache_read\",\"mb_per_s\":%.1f}\n", mb * 1.048576 / (ns / 1e9)}' | emit

echo "== pull throughput (workers x channels), peak RSS, downtime at 1% dirty" >&2
bash bench/pull-bench.sh "$build" "$size" "$runs" "$grid" | sed 's/^{/{"bench":"pull",/' | emit

echo "== pull throughput by RTT (default 16x4 and 64x8)" >&2
for rtt in $rtts; do
  RTT_MS=$rtt bash bench/pull-bench.sh "$build" "$rtt_size" 1 "16x4 64x8" | grep workers | sed 's/^{/{"bench":"pull_rtt",/' | emit
done

echo "== first-chunk latency after Finalize, by RTT" >&2
for rtt in $rtts; do
  bash bench/latency-bench.sh "$build" 1024 "$rtt" | sed 's/^{/{"bench":"first_chunk",/' | emit
done

echo "== downtime by image size and dirty share (16x4, no last Sync)" >&2
for mb in $sizes_downtime; do
  for pct in 0 1 10; do
    DIRTY_PCT=$pct bash bench/pull-bench.sh "$build" "$mb" 1 "16x4" | grep workers |
      sed "s/^{/{\"bench\":\"downtime\",\"dirty_pct\":$pct,/" | emit
  done
done

echo "== chunk size: pull throughput, first-chunk latency, dirty amplification" >&2
for chunk in 65536 262144 1048576 4194304; do
  CHUNK=$chunk bash bench/pull-bench.sh "$build" "$rtt_size" 1 "16x4" | grep workers |
    sed 's/^{/{"bench":"chunk_pull",/' | emit
  bash bench/latency-bench.sh "$build" 1024 0 "$chunk" | sed 's/^{/{"bench":"chunk_latency",/' | emit
done

echo "== NBD serving against nbdkit file and qemu-nbd" >&2
bash bench/nbd-serve.sh "$build" "$size" $([ $quick = true ] && echo 3 || echo 5) | sed 's/^{/{"bench":"nbd_serve",/' | emit

{
  echo "# godwit benchmark run ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $($quick && echo quick || echo full))"
  echo
  echo "Raw figures, one JSON object per measurement (medians with min/max where repeated):"
  echo
  echo '```'
  cat "$json"
  echo '```'
} >"$out/latest.md"
echo "bench: wrote $json and $out/latest.md" >&2
