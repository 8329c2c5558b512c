#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark run: every figure measured on loopback in one go, next to
# the baselines of the same run, as medians (min, max) over several runs.
# Writes raw JSON lines to bench/results/latest.jsonl and a report to
# bench/results/latest.md.
#   bench/run.sh [--quick]     (quick: about 5 minutes; full: about 20)
# QEMU's live migration takes part where qemu-system-x86_64 and /dev/kvm
# are usable (scripts/install-bench-deps.sh); otherwise the report says why not.
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
began=$(date +%s)
# section NAME: starts timing a section (the previous one's seconds go to the JSON)
section_name="" section_began=$began
section() {
  [ -z "$section_name" ] ||
    echo "{\"bench\":\"section\",\"name\":\"$section_name\",\"seconds\":$(($(date +%s) - section_began))}" >>"$json"
  section_name=$1 section_began=$(date +%s)
  [ -z "$1" ] || echo "== $1" >&2
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' ','; }

# peers: godwit, qemu-img, nbdcopy, the copy floor and QEMU on the workloads of issue 13
# (dense 1 GiB, sparse 2 GiB with 10% data, dense 1 GiB under a writer, 64 MiB on 6 MB/s)
if $quick; then size=256; runs=3; grid="4x2 16x4"; rtts="0 50"; rtt_size=1024
     rtt_runs=1; latency_size=512; sizes_downtime="64 256"; downtime_pcts="0 1"; chunk_sizes=""; chunk_size_mb=256; nbd_runs=3
     tls_size=256; tls_runs=3; tls_grid="16x4"
     peer_runs=3; rss_size=""; export SLOW_VERIFY_RUNS=1
else size=1024; runs=3; grid="1x1 1x2 1x4 1x8 4x1 4x2 4x4 4x8 16x1 16x2 16x4 16x8 64x1 64x2 64x4 64x8"
     rtts="0 1 10 50"; rtt_size=1024; rtt_runs=3; latency_size=2048; sizes_downtime="64 1024 4096"; downtime_pcts="0 1 10"
     chunk_sizes="65536 262144 1048576 4194304"; chunk_size_mb=1024; nbd_runs=5
     tls_size=1024; tls_runs=5; tls_grid="16x4 64x8"
     peer_runs=5; rss_size=4096; export QEMU_DEFAULTS=1; fi

# This VM hands memory that has been free for a moment back to its host
# ("free page reporting"); touching such memory again costs about 8x (dd
# of 512 MiB: 0.85 s instead of 0.10 s), so whichever run happens to get
# those pages looks slow. Hold reporting back during the run, restore after.
reporting=/sys/module/page_reporting/parameters/min_free_ms
held=""
if [ -w "$reporting" ]; then
  held=$(cat "$reporting")
  echo 300000 >"$reporting" # five minutes, the most it takes
  trap 'echo "$held" >"$reporting"' EXIT
fi
steal_before=$(awk '/^cpu / {print $9}' /proc/stat)
echo "{\"bench\":\"machine\",\"cores\":$(nproc),\"kernel\":\"$(uname -r)\",\"quick\":$quick,\"loadavg_start\":[$(loadavg)],\"page_reporting_held\":$([ -n "$held" ] && echo true || echo false)}" | emit

section "baselines"
for s in 1 4; do "$build/bench/godwit-tcp-baseline" --streams $s --seconds 1 | sed 's/^{/{"bench":"tcp",/' | emit; done
img=$(mktemp); head -c $((size << 20)) /dev/urandom >"$img"; cat "$img" >/dev/null
for r in 1 2 3; do
  start=$(date +%s%N); cat "$img" >/dev/null; end=$(date +%s%N)
  awk -v mb=$size -v ns=$((end - start)) 'BEGIN {printf "%.1f\n", mb * 1.048576 / (ns / 1e9)}'
done | sort -n | awk '{a[NR]=$1} END {printf "{\"bench\":\"page_cache_read\",\"mb_per_s\":{\"median\":%g,\"min\":%g,\"max\":%g}}\n", a[2], a[1], a[3]}' | emit
rm -f "$img"

for w in "dense 1024" "sparse 2048" "writer 1024" "slowlink 64"; do
  read -r workload mb <<<"$w"
  section "peers, $workload $mb MiB: godwit, qemu-img, nbdcopy, the copy floor, QEMU live migration (interleaved)"
  bash bench/peers.sh "$build" "$workload" "$mb" "$peer_runs" | sed 's/^{/{"bench":"peers",/' | emit
done

section "pull throughput (workers x channels), peak RSS, CPU, downtime at 1% dirty; copy floor"
bash bench/pull-bench.sh "$build" "$size" "$runs" "$grid" | sed 's/^{"baseline"/{"bench":"baseline","baseline"/; s/^{"rtt_ms"/{"bench":"pull","rtt_ms"/' | emit

section "pull throughput by RTT (the default: workers from the round trip, 4 channels; 16x4 fixed)"
for rtt in $rtts; do
  RTT_MS=$rtt BASELINES=0 bash bench/pull-bench.sh "$build" "$rtt_size" "$rtt_runs" "autox4 16x4" | grep workers | sed 's/^{/{"bench":"pull_rtt",/' | emit
done

section "first-chunk latency after Finalize, by RTT"
for rtt in $rtts; do
  bash bench/latency-bench.sh "$build" "$latency_size" "$rtt" | sed 's/^{/{"bench":"first_chunk",/' | emit
done

section "downtime by image size and dirty share (16x4, no last Sync)"
for mb in $sizes_downtime; do
  for pct in $downtime_pcts; do
    DIRTY_PCT=$pct BASELINES=0 bash bench/pull-bench.sh "$build" "$mb" 3 "16x4" | grep workers |
      sed 's/^{/{"bench":"downtime",/' | emit
  done
done

if [ -n "$rss_size" ]; then
  section "leecher peak RSS on a $rss_size MiB image, default workers and channels"
  BASELINES=0 bash bench/pull-bench.sh "$build" "$rss_size" 1 "autox4" | grep workers |
    sed 's/^{/{"bench":"rss",/' | emit
fi

[ -z "$chunk_sizes" ] || section "chunk size: pull throughput, first-chunk latency, dirty amplification"
for chunk in $chunk_sizes; do
  CHUNK=$chunk BASELINES=0 bash bench/pull-bench.sh "$build" "$chunk_size_mb" "$rtt_runs" "16x4" | grep workers |
    sed 's/^{/{"bench":"chunk_pull",/' | emit
  bash bench/latency-bench.sh "$build" "$latency_size" 0 "$chunk" | sed 's/^{/{"bench":"chunk_latency",/' | emit
done

section "mTLS against plaintext (taking turns run by run)"
TLS=compare BASELINES=0 bash bench/pull-bench.sh "$build" "$tls_size" "$tls_runs" "$tls_grid" | grep workers |
  sed 's/^{/{"bench":"tls",/' | emit

section "NBD serving against nbdkit file and qemu-nbd"
bash bench/nbd-serve.sh "$build" "$size" "$nbd_runs" | sed 's/^{/{"bench":"nbd_serve",/' | emit

steal=$(($(awk '/^cpu / {print $9}' /proc/stat) - steal_before))
section ""
echo "{\"bench\":\"run\",\"loadavg_end\":[$(loadavg)],\"seconds\":$(($(date +%s) - began)),\"host_steal_ticks\":$steal}" | emit
bash bench/report.sh "$json" >"$out/latest.md"
echo "bench: wrote $json and $out/latest.md" >&2
