#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Convergence (--converge-rounds): a source writer that dirties chunks
# faster than a 2 MB/s link pulls them makes the leecher say so: the
# not_converging event (its rounds, dirty counts, rates and a hint),
# Status.not_converging and the godwit_leecher_not_converging gauge. Once
# the writer stops, pre-copy catches up: a converging event, the gauge
# back to 0, and after Finalize a byte-exact copy. A writer the link keeps
# up with never causes the event.
source "$(dirname "$0")/functions.sh"
requires jq
requires curl
CTL=$GODWIT_BIN/ctl/godwit-ctl
WRITER=$GODWIT_BIN/bench/godwit-writer
LINKEM=$GODWIT_BIN/bench/godwit-linkem

# start_migration NAME RATE_MBPS LEECHER_FLAGS...: a seeder on an 8 MiB
# random image (64K chunks), godwit-linkem capped at RATE_MBPS in front of
# it, and a leecher pulling through the link with --metrics. Sets DIR,
# LEECHER_PID, CONTROL and METRICS.
start_migration() {
  local name=$1 rate=$2
  shift 2
  DIR=$TEST_DIR/$name
  mkdir -p "$DIR"
  head -c $((8 << 20)) /dev/urandom >"$DIR/src.img"
  "$SEEDER" --image "$DIR/src.img" --chunk-size 64K --listen 127.0.0.1:0 \
    --nbd-socket "$DIR/src.sock" --log-format json >"$DIR/seeder.events" 2>"$DIR/seeder.log" &
  local seeder=$!
  cleanup_pids+=("$seeder")
  local port relay linkem
  port=$(ready_field "$DIR/seeder.events" $seeder port)
  "$LINKEM" --listen 127.0.0.1:0 --target "127.0.0.1:$port" --rate-mbps "$rate" --shared-rate \
    --log-format json >"$DIR/linkem.events" 2>"$DIR/linkem.log" &
  linkem=$!
  cleanup_pids+=("$linkem")
  relay=$(ready_field "$DIR/linkem.events" $linkem port)
  "$LEECHER" --seeder "127.0.0.1:$relay" --image "$DIR/dest.img" --control 127.0.0.1:0 \
    --metrics 127.0.0.1:0 --log-format json "$@" >"$DIR/leecher.events" 2>"$DIR/leecher.log" &
  LEECHER_PID=$!
  cleanup_pids+=("$LEECHER_PID")
  CONTROL=127.0.0.1:$(ready_field "$DIR/leecher.events" $LEECHER_PID control_port 20)
  METRICS=$(ready_field "$DIR/leecher.events" $LEECHER_PID metrics_port)
}

# gauge NAME: the leecher's metric NAME now.
gauge() {
  curl -fsS --max-time 5 "http://127.0.0.1:$METRICS/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# wait_for SECONDS WHAT CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for i in $(seq 1 $((seconds * 10))); do
    "$@" && return 0
    sleep 0.1
  done
  fail "$what within $seconds s (see $DIR/leecher.events)"
}

has_event() { grep -q "\"event\":\"$1\"" "$DIR/leecher.events"; }
status_says() { "$CTL" --control "$CONTROL" status --json | jq -e "$1" >/dev/null; }
gauge_is() { [ "$(gauge godwit_leecher_not_converging)" = "$1" ]; }

# finish: Finalize, wait for COMPLETE, compare the images.
finish() {
  "$CTL" --control "$CONTROL" finalize >"$DIR/finalize.json" || fail "Finalize failed"
  "$CTL" --control "$CONTROL" --timeout 60 wait-complete >"$DIR/complete.json" ||
    fail "no COMPLETE: $(cat "$DIR/complete.json")"
  cmp "$DIR/src.img" "$DIR/dest.img" || fail "$1: the destination differs from the source"
  kill -TERM "$LEECHER_PID"
  wait "$LEECHER_PID" || fail "$1: leecher exit status"
}

# 1. A writer at 10 MB/s over the whole image, a 2 MB/s link, K = 3.
start_migration fast 2 --converge-rounds 3 --sync-interval 100 --workers 4 --batch 64K
"$WRITER" --socket "$DIR/src.sock" --rate-mbps 10 --block 64K --hot-percent 0 \
  >"$DIR/writer.log" 2>&1 &
writer=$!
cleanup_pids+=("$writer")
wait_for 60 "no not_converging event" has_event not_converging
event=$(grep -m1 '"event":"not_converging"' "$DIR/leecher.events")
jq -e '.rounds == 3 and .dirty_chunks >= .best_dirty_chunks and .dirty_mb_per_s > .pull_mb_per_s
  and (.hint | test("the source dirties [0-9.]+ MB/s and the link pulls [0-9.]+ MB/s"))
  and (.predicted_downtime_ms | type == "number")' <<<"$event" >/dev/null ||
  fail "the not_converging event lacks its figures: $event"
wait_for 30 "Status never said not_converging" \
  status_says '.not_converging and .stalled_rounds >= 3 and (.convergence_hint | length > 0)'
wait_for 30 "the gauge never said 1" gauge_is 1
kill -TERM "$writer"
wait "$writer" || true
wait_for 60 "no converging event after the writer stopped" has_event converging
wait_for 30 "the gauge stayed 1 after the writer stopped" gauge_is 0
status_says '.not_converging == false' || fail "Status still says not_converging"
finish fast

# 2. A writer the link keeps up with (1 MB/s, mostly a hot set, no cap):
# the same K never fires.
start_migration slow 0 --converge-rounds 3 --sync-interval 100
"$WRITER" --socket "$DIR/src.sock" --rate-mbps 1 --block 4K --hot-percent 90 \
  >"$DIR/writer.log" 2>&1 &
writer=$!
cleanup_pids+=("$writer")
"$CTL" --control "$CONTROL" --timeout 60 wait-local >/dev/null || fail "pre-copy did not catch up"
sleep 3 # about 30 Sync rounds with the writer running
rounds=$(gauge godwit_leecher_sync_rounds_total)
[ "${rounds%.*}" -ge 10 ] || fail "only $rounds Sync rounds in 3 s"
has_event not_converging && fail "a converging migration emitted not_converging: \
$(grep '"event":"not_converging"' "$DIR/leecher.events")"
gauge_is 0 || fail "the gauge says not converging"
kill -TERM "$writer"
wait "$writer" || true
finish slow
echo "test-not-converging: ok"
