#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# /metrics on both daemons during a real migration with a live writer: the
# endpoint's HTTP behaviour, promtool check metrics on every scrape, and
# values that make sense (counters never go back, bytes pulled reach the
# image size, chunks local reach the total, states move on, Syncs and
# re-dirtied chunks counted, a measured downtime), plus bad --metrics flags.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/metrics-lib.sh"
requires jq
requires curl
requires promtool
WRITER=$GODWIT_BIN/bench/godwit-writer

for daemon in "$SEEDER --image $TEST_DIR/x.img --size 1M" "$LEECHER --seeder 127.0.0.1:1 --image $TEST_DIR/y.img"; do
  for bad in nonsense 127.0.0.1:65536 ::1:80 127.0.0.1:; do
    # shellcheck disable=SC2086
    expect_exit 2 $daemon --metrics "$bad"
    one_sentence "--metrics"
  done
done

start_pair 32 --workers 2 --batch 64K --sync-interval 200

# The endpoint: only GET/HEAD of /metrics.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "http://127.0.0.1:$SEEDER_METRICS/")" = 404 ] || fail "/ is not 404"
[ "$(code -X POST -d x "http://127.0.0.1:$SEEDER_METRICS/metrics")" = 405 ] || fail "POST is not 405"
[ "$(code -I "http://127.0.0.1:$LEECHER_METRICS/metrics")" = 200 ] || fail "HEAD is not 200"
curl -sI "http://127.0.0.1:$LEECHER_METRICS/metrics" | grep -qi '^content-type: text/plain; version=0.0.4' ||
  fail "no Prometheus content type"

"$WRITER" --socket "$TEST_DIR/src.sock" --rate-mbps 4 --block 4K >"$TEST_DIR/writer.log" 2>&1 &
writer=$!
cleanup_pids+=("$writer")

chunks=$((IMAGE_SIZE / 65536))
last_bytes=0 last_pulled=0 states="" seeder_tracking=0 max_rate=0
check_scrapes() { # scrapes both, lints them, checks the counters did not go back
  scrape "$SEEDER_METRICS" "$TEST_DIR/s.prom"
  scrape "$LEECHER_METRICS" "$TEST_DIR/l.prom"
  promtool check metrics <"$TEST_DIR/s.prom" || fail "promtool: seeder metrics"
  promtool check metrics <"$TEST_DIR/l.prom" || fail "promtool: leecher metrics"
  local bytes pulled state
  bytes=$(value "$TEST_DIR/l.prom" godwit_leecher_pulled_bytes_total)
  pulled=$(value "$TEST_DIR/l.prom" godwit_leecher_pulled_chunks_total)
  ge "$bytes" "$last_bytes" || fail "pulled bytes went back from $last_bytes to $bytes"
  ge "$pulled" "$last_pulled" || fail "pulled chunks went back from $last_pulled to $pulled"
  last_bytes=$bytes last_pulled=$pulled
  state=$(awk '/^godwit_leecher_state\{/ && $2 == 1 { sub(/.*state="/, ""); sub(/".*/, ""); print }' \
    "$TEST_DIR/l.prom")
  case " $states " in *" $state "*) ;; *) states="$states $state" ;; esac
  [ "$(value "$TEST_DIR/s.prom" 'godwit_seeder_state{state="tracking"}')" = 1 ] && seeder_tracking=1
  local rate
  rate=$(value "$TEST_DIR/s.prom" godwit_seeder_dirty_rate_chunks_per_second)
  ge "$max_rate" "$rate" || max_rate=$rate
}

# Pre-copy: until the first pass is done and a few Syncs re-dirtied chunks.
for i in $(seq 1 300); do
  check_scrapes
  [ "$last_pulled" -ge "$chunks" ] &&
    [ "$(value "$TEST_DIR/l.prom" godwit_leecher_sync_rounds_total)" -ge 3 ] &&
    [ "$(value "$TEST_DIR/l.prom" godwit_leecher_redirtied_chunks_total)" -gt 0 ] &&
    ge "$max_rate" 0.001 && break
  sleep 0.1
done
[ "$i" -lt 300 ] || fail "pre-copy did not progress: $(grep -v '^#' "$TEST_DIR/l.prom")"
echo "pre-copy after $i scrapes: pulled $last_bytes bytes, $last_pulled chunks"
[ "$seeder_tracking" = 1 ] || fail "the seeder never reported tracking"
ge "$max_rate" 0.001 || fail "the seeder never reported a dirty rate while written to"
[ "$(value "$TEST_DIR/l.prom" 'godwit_leecher_state{state="precopy"}')" = 1 ] || fail "not precopy"
ge "$(value "$TEST_DIR/l.prom" godwit_leecher_pull_duration_seconds_count)" 1 || fail "no pull timed"
ge "$(value "$TEST_DIR/s.prom" godwit_seeder_served_bytes_total)" "$IMAGE_SIZE" || fail "served bytes"
[ "$(value "$TEST_DIR/s.prom" godwit_seeder_read_at_requests_total)" = \
  "$(value "$TEST_DIR/s.prom" godwit_seeder_read_at_duration_seconds_count)" ] ||
  fail "ReadAt calls and the histogram's count disagree"

kill "$writer"
wait "$writer" 2>/dev/null || true
kill -USR1 "$LEECHER_PID" # Finalize
for i in $(seq 1 300); do
  check_scrapes
  [ "$(value "$TEST_DIR/l.prom" 'godwit_leecher_state{state="complete"}')" = 1 ] && break
  if [ $((i % 20)) = 0 ] && grep -q 'Finalize: .*retry Finalize' "$TEST_DIR/leecher.events"; then
    echo "Finalize failed ($(grep -o 'Finalize: [^"]*' "$TEST_DIR/leecher.events" | tail -n 1)); retrying"
    kill -USR1 "$LEECHER_PID" # the leecher says a failed Finalize may be retried
  fi
  sleep 0.1
done
[ "$i" -lt 300 ] || fail "the migration did not complete: $(grep -v '^#' "$TEST_DIR/l.prom")"
echo "leecher states seen:$states"
case "$states" in " precopy "*complete) ;; *) fail "states seen:$states" ;; esac
[ "$(value "$TEST_DIR/l.prom" godwit_leecher_local_chunks)" = "$chunks" ] || fail "local != total"
[ "$(value "$TEST_DIR/l.prom" godwit_leecher_image_chunks)" = "$chunks" ] || fail "image chunks"
ge "$last_bytes" "$IMAGE_SIZE" || fail "pulled $last_bytes bytes of $IMAGE_SIZE"
ge "$(value "$TEST_DIR/l.prom" godwit_leecher_downtime_seconds)" 0.000001 || fail "no downtime"
[ "$(value "$TEST_DIR/l.prom" godwit_leecher_checksum_mismatches_total)" = 0 ] || fail "mismatches"
[ "$(value "$TEST_DIR/l.prom" godwit_leecher_predicted_downtime_seconds)" = 0 ] ||
  fail "a prediction after Finalize"
for i in $(seq 1 100); do # the seeder hears Complete just after the leecher's state changes
  scrape "$SEEDER_METRICS" "$TEST_DIR/s.prom"
  [ "$(value "$TEST_DIR/s.prom" 'godwit_seeder_state{state="complete"}')" = 1 ] && break
  sleep 0.1
done
[ "$i" -lt 100 ] || fail "the seeder never reported complete"
cmp "$TEST_DIR/src.img" "$TEST_DIR/dest.img" || fail "the images differ"
grep -v '^#' "$TEST_DIR/l.prom" | grep -v _bucket
echo "PASS"
