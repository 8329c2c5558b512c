#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real NBD clients against the library's own server (nbd-serve-file):
# nbdinfo shows the size and flags, nbdcopy copies the file out byte-exact
# and a different file in byte-exact, and the socket is gone after SIGTERM.
source "$(dirname "$0")/functions.sh"
requires nbdinfo
requires nbdcopy
SERVE=$GODWIT_BIN/tests/nbd-serve-file
size=$((8 << 20))

head -c "$size" /dev/urandom >"$TEST_DIR/disk"
cp "$TEST_DIR/disk" "$TEST_DIR/original"
"$SERVE" "$TEST_DIR/disk" "$TEST_DIR/nbd.sock" 2>"$TEST_DIR/log" &
pid=$!
cleanup_pids+=($pid)
wait_path "$TEST_DIR/nbd.sock" || fail "nbd-serve-file did not start: $(cat "$TEST_DIR/log")"
[ "$(stat -c %a "$TEST_DIR/nbd.sock")" = 600 ] || fail "socket mode is not 0600"
uri="nbd+unix:///?socket=$TEST_DIR/nbd.sock"

[ "$(nbdinfo --size "$uri")" = "$size" ] || fail "nbdinfo size $(nbdinfo --size "$uri")"
nbdinfo "$uri" >"$TEST_DIR/info"
grep -q "can_multi_conn: true" "$TEST_DIR/info" || fail "no multi-conn: $(cat "$TEST_DIR/info")"
grep -q "is_read_only: false" "$TEST_DIR/info" || fail "read-only: $(cat "$TEST_DIR/info")"

nbdcopy "$uri" "$TEST_DIR/out"
cmp "$TEST_DIR/out" "$TEST_DIR/original" || fail "nbdcopy out differs"

head -c "$size" /dev/urandom >"$TEST_DIR/new"
nbdcopy --connections 4 "$TEST_DIR/new" "$uri"
cmp "$TEST_DIR/disk" "$TEST_DIR/new" || fail "nbdcopy in differs"

kill -TERM "$pid"
wait "$pid" || fail "nbd-serve-file exited $?"
[ ! -e "$TEST_DIR/nbd.sock" ] || fail "socket left behind"
echo "test-nbd-serve-file: ok"
