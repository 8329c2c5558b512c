#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real NBD clients against the seeder's export: nbdinfo sees the size,
# nbdcopy copies the image out and a new one in byte for byte, nbdfuse
# mounts it.
source "$(dirname "$0")/functions.sh"
requires nbdinfo
requires nbdcopy

head -c $((32 << 20)) /dev/urandom >"$TEST_DIR/image"
cp "$TEST_DIR/image" "$TEST_DIR/original"
"$SEEDER" --image "$TEST_DIR/image" --listen 127.0.0.1:0 --nbd-socket "$TEST_DIR/nbd.sock" \
  2>"$TEST_DIR/log" &
cleanup_pids+=($!)
wait_path "$TEST_DIR/nbd.sock" || fail "seeder did not start: $(cat "$TEST_DIR/log")"
uri="nbd+unix:///?socket=$TEST_DIR/nbd.sock"

nbdinfo --size "$uri" >"$TEST_DIR/size"
[ "$(cat "$TEST_DIR/size")" = $((32 << 20)) ] || fail "nbdinfo size $(cat "$TEST_DIR/size")"
nbdinfo "$uri" | grep -q "can_multi_conn: true" || fail "nbdinfo lacks multi-conn"

nbdcopy "$uri" "$TEST_DIR/out"
cmp "$TEST_DIR/out" "$TEST_DIR/original" || fail "nbdcopy out differs"
head -c $((32 << 20)) /dev/urandom >"$TEST_DIR/new"
nbdcopy --connections 4 "$TEST_DIR/new" "$uri"
cmp "$TEST_DIR/image" "$TEST_DIR/new" || fail "nbdcopy in differs"
echo "test-nbd-clients: ok"
