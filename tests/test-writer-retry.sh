#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# godwit-writer (the stand-in workload of the manifests): without --retry a
# failed connection ends it with exit 1; with --retry it waits for a seeder
# that is not there yet, reconnects after the seeder restarts, and exits 0
# on SIGTERM instead of crash-looping.
source "$(dirname "$0")/functions.sh"
WRITER=$GODWIT_BIN/bench/godwit-writer
sock=$TEST_DIR/nbd.sock

expect_exit 1 "$WRITER" --socket "$sock" --count 1
one_sentence "cannot connect to $sock"

start_seeder() {
  "$SEEDER" --image "$TEST_DIR/image" --size 16M --listen 127.0.0.1:0 --nbd-socket "$sock" \
    >>"$TEST_DIR/seeder.out" 2>&1 &
  seeder=$!
  cleanup_pids+=($seeder)
  wait_path "$sock" 10 || fail "seeder did not serve $sock: $(cat "$TEST_DIR/seeder.out")"
}

# Started before the seeder: it retries the connection, then writes.
"$WRITER" --socket "$sock" --retry --rate-mbps 1 >"$TEST_DIR/writer.out" 2>"$TEST_DIR/writer.err" &
writer=$!
cleanup_pids+=($writer)
sleep 0.5
kill -0 "$writer" 2>/dev/null || fail "the writer exited without a seeder: $(cat "$TEST_DIR/writer.err")"
grep -q "retrying in" "$TEST_DIR/writer.err" || fail "no retry logged: $(cat "$TEST_DIR/writer.err")"
start_seeder
sleep 1

# The seeder goes away and comes back: the writer keeps trying, no exit.
kill "$seeder" && wait "$seeder" 2>/dev/null || true
rm -f "$sock"
: >"$TEST_DIR/writer.err"
sleep 1
kill -0 "$writer" 2>/dev/null || fail "the writer exited when the seeder stopped: $(cat "$TEST_DIR/writer.err")"
grep -q "retrying in" "$TEST_DIR/writer.err" || fail "no retry after the seeder stopped"
start_seeder
# Writes resume: the image changes again.
before=$(md5sum <"$TEST_DIR/image")
deadline=$((SECONDS + 15))
until [ "$(md5sum <"$TEST_DIR/image")" != "$before" ]; do
  [ $SECONDS -lt $deadline ] || fail "no writes after the seeder came back: $(tail -3 "$TEST_DIR/writer.err")"
  sleep 0.3
done
kill -TERM "$writer"
status=0
wait "$writer" || status=$?
[ "$status" -eq 0 ] || fail "the writer exited $status on SIGTERM: $(cat "$TEST_DIR/writer.err")"
grep -q '"event":"writer_done"' "$TEST_DIR/writer.out" || fail "no writer_done: $(cat "$TEST_DIR/writer.out")"
echo "test-writer-retry: ok"
