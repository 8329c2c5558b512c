#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What --verify costs against the pull of the same run: whole migrations of
# one page-cached image of random data, taking turns run by run between the
# leecher without and with --verify (seeder and leecher at default flags
# otherwise, over loopback TCP, --sync-interval 600000 so nothing but the
# first pass is pulled). Each run: leecher start to wait-local (pull_ms),
# then Finalize and wait-complete (tail_ms: Finalize call to COMPLETE; with
# --verify it holds the comparison). The verify line adds the `verified`
# event's ms and the ratios to the median pull without --verify:
# cost = (tail with - tail without) / pull, verified_ratio = verified ms / pull.
# Each round also measures the floor with godwit-hash-floor (the same
# pread + XXH3-64 per chunk, nothing else running): both images at once, one
# thread each (both sides hashing after the freeze, as --verify does), and
# the source alone on two threads (the least the seeder must do after the
# freeze even if the leecher's side were hidden in the pull); the floor
# line gives their medians and ratios to the pull.
#   bench/verify-bench.sh BUILD SIZE_MB RUNS
# VERIFY_ARGS="..." adds leecher flags to the --verify runs only.
set -euo pipefail
build=${1:-build-release}
size_mb=${2:-1024}
runs=${3:-3}
for b in seeder/godwit-seeder leecher/godwit-leecher ctl/godwit-ctl bench/godwit-hash-floor; do
  [ -x "$build/$b" ] || { echo "verify-bench: build $build/$b first" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

now() { date +%s%N; }
ms_between() { awk -v ns=$(($2 - $1)) 'BEGIN {printf "%.1f", ns / 1e6}'; }
median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'; }
ready_port() { # EVENTS PID FIELD
  for _ in $(seq 2000); do
    if grep -q '"event":"ready"' "$1" 2>/dev/null; then
      grep -m1 '"event":"ready"' "$1" | sed -n "s/.*\"$3\":\\([0-9]*\\).*/\\1/p"
      return
    fi
    kill -0 "$2" 2>/dev/null || { echo "verify-bench: process $2 exited" >&2; exit 1; }
    sleep 0.005
  done
  echo "verify-bench: no ready event in $1" >&2
  exit 1
}

src=$dir/source.img
dest=$dir/dest.img
head -c $((size_mb << 20)) /dev/urandom >"$src"
sync "$src"
cat "$src" >/dev/null

# run_one MODE: prints "PULL_MS TAIL_MS VERIFIED_MS"
run_one() {
  local mode=$1 seeder leecher sp cp start local_at f0 done_at verified=- args=()
  [ "$mode" = off ] || args=(--verify ${VERIFY_ARGS:-})
  rm -f "$dest" "$dest.godwit-state" "$src.godwit-seeder"
  "$build/seeder/godwit-seeder" --image "$src" --listen 127.0.0.1:0 --log-format json \
    >"$dir/seeder.events" 2>"$dir/seeder.log" &
  seeder=$!; pids+=($seeder)
  sp=$(ready_port "$dir/seeder.events" $seeder port)
  start=$(now)
  "$build/leecher/godwit-leecher" --seeder "127.0.0.1:$sp" --image "$dest" --control 127.0.0.1:0 \
    --sync-interval 600000 --log-format json "${args[@]}" >"$dir/leecher.events" 2>"$dir/leecher.log" &
  leecher=$!; pids+=($leecher)
  cp=$(ready_port "$dir/leecher.events" $leecher control_port)
  "$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" --timeout 300 wait local >/dev/null
  local_at=$(now)
  f0=$(now)
  "$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" finalize >/dev/null
  "$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" --timeout 300 wait complete >/dev/null
  done_at=$(now)
  if [ "$mode" = on ]; then
    verified=$(sed -n 's/.*"event":"verified".*"ms":\([0-9.]*\).*/\1/p' "$dir/leecher.events")
    [ -n "$verified" ] || { echo "verify-bench: no verified event" >&2; exit 1; }
  fi
  kill -TERM $leecher $seeder
  wait $leecher $seeder || true
  cmp -s "$src" "$dest" || { echo "verify-bench: the destination differs" >&2; exit 1; }
  echo "$(ms_between "$start" "$local_at") $(ms_between "$f0" "$done_at") $verified"
}

: >"$dir/off" && : >"$dir/on" && : >"$dir/both" && : >"$dir/seeder2"
floor_ms() { "$build/bench/godwit-hash-floor" "$@" | sed -n 's/.*"ms":\([0-9.]*\).*/\1/p'; }
for run in $(seq 1 "$runs"); do
  order="off on"
  [ $((run % 2)) -eq 1 ] || order="on off"
  for mode in $order; do run_one $mode >>"$dir/$mode"; done
  floor_ms "$src" "$dest" >>"$dir/both"
  floor_ms --threads 2 "$src" >>"$dir/seeder2"
done
both=$(median <"$dir/both")
seeder2=$(median <"$dir/seeder2")
pull_off=$(awk '{print $1}' "$dir/off" | median)
tail_off=$(awk '{print $2}' "$dir/off" | median)
pull_on=$(awk '{print $1}' "$dir/on" | median)
tail_on=$(awk '{print $2}' "$dir/on" | median)
verified=$(awk '{print $3}' "$dir/on" | median)
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "{\"mode\":\"off\",\"size_mb\":$size_mb,\"runs\":$runs,\"pull_ms\":$pull_off,\"tail_ms\":$tail_off,\"all\":\"$(tr '\n' ';' <"$dir/off")\"}"
awk -v po="$pull_off" -v to="$tail_off" -v pn="$pull_on" -v tn="$tail_on" -v v="$verified" \
  -v size="$size_mb" -v runs="$runs" -v load="$load" -v all="$(tr '\n' ';' <"$dir/on")" 'BEGIN {
  printf "{\"mode\":\"verify\",\"size_mb\":%d,\"runs\":%d,\"pull_ms\":%.1f,\"tail_ms\":%.1f,", size, runs, pn, tn
  printf "\"verified_ms\":%.1f,\"cost\":%.3f,\"verified_ratio\":%.3f,\"pull_ratio\":%.3f,", v, (tn - to) / po, v / po, pn / po
  printf "\"load\":\"%s\",\"all\":\"%s\"}\n", load, all }'
awk -v po="$pull_off" -v b="$both" -v s2="$seeder2" -v all_b="$(tr '\n' ';' <"$dir/both")" \
  -v all_s="$(tr '\n' ';' <"$dir/seeder2")" 'BEGIN {
  printf "{\"mode\":\"floor\",\"both_sides_ms\":%.1f,\"both_sides_ratio\":%.3f,", b, b / po
  printf "\"seeder_2_threads_ms\":%.1f,\"seeder_2_threads_ratio\":%.3f,", s2, s2 / po
  printf "\"all_both\":\"%s\",\"all_seeder2\":\"%s\"}\n", all_b, all_s }'
