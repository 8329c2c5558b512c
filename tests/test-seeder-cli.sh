#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# godwit-seeder's command line: --help, --version, one clear sentence and a
# non-zero exit for bad flags or config (exit 2 for flags that conflict or
# would be ignored, garbage TLS files), sparse creation, JSON config with
# flags winning, port-in-use, JSON event lines, clean SIGTERM.
source "$(dirname "$0")/functions.sh"

expect_exit 0 "$SEEDER" --help
case $OUT in *--image*--chunk-size*--config*) ;; *) fail "--help lacks flags: $OUT" ;; esac
expect_exit 0 "$SEEDER" --version
case $OUT in "godwit-seeder "[0-9]*) ;; *) fail "--version printed '$OUT'" ;; esac

expect_exit 2 "$SEEDER"
one_sentence "--image is required"
expect_exit 2 "$SEEDER" --image x --bogus
one_sentence "unknown option --bogus"
expect_exit 2 "$SEEDER" --image x --size lots
one_sentence "--size"
expect_exit 2 "$SEEDER" --image x --log-format yaml
one_sentence "--log-format must be text or json"
expect_exit 1 "$SEEDER" --image "$TEST_DIR/missing.img"
one_sentence "give --size to create it"
truncate -s 1M "$TEST_DIR/odd.img"
expect_exit 2 "$SEEDER" --image "$TEST_DIR/odd.img" --chunk-size 3000
one_sentence "--chunk-size must be a power of two from 4K to 16M"
expect_exit 1 "$SEEDER" --image "$TEST_DIR/odd.img" --size 2M
one_sentence "but --size says"

# Flags that would be ignored or conflict: exit 2 and one sentence.
img=$TEST_DIR/odd.img
expect_exit 2 "$SEEDER" --image "$img" --chunk-size 32M
one_sentence "(a chunk must fit in one ReadAt)"
expect_exit 2 "$SEEDER" --image "$img" --mount "$TEST_DIR/mnt"
one_sentence "--mount needs --nbd-socket"
expect_exit 2 "$SEEDER" --image "$img" --mount "$TEST_DIR/mnt" --nbd-tcp 127.0.0.1:0
one_sentence "--mount needs --nbd-socket"
echo "not a certificate" >"$TEST_DIR/garbage.pem"
expect_exit 2 "$SEEDER" --image "$img" --tls-ca "$TEST_DIR/garbage.pem"
one_sentence "--tls-ca needs --tls-cert and --tls-key"
expect_exit 2 "$SEEDER" --image "$img" --tls-cert "$TEST_DIR/garbage.pem"
one_sentence "--tls-cert and --tls-key go together"
expect_exit 2 "$SEEDER" --image "$img" --tls-cert "$TEST_DIR/garbage.pem" \
  --tls-key "$TEST_DIR/garbage.pem"
one_sentence "--tls-cert $TEST_DIR/garbage.pem holds no PEM certificate"
expect_exit 2 "$SEEDER" --image "$img" --tls-cert "$TEST_DIR/none.pem" --tls-key "$TEST_DIR/none.pem"
one_sentence "cannot read --tls-cert $TEST_DIR/none.pem"
expect_exit 2 "$SEEDER" --image "$img" --freeze fail --freeze-max-held 10
one_sentence "only matter with --freeze hold"
expect_exit 2 "$SEEDER" --image "$img" --threads 0
one_sentence "--threads must be from 1 to 256"
expect_exit 2 "$SEEDER" --image "$img" --listen 1337
one_sentence "--listen must be HOST:PORT"
expect_exit 2 "$SEEDER" --image "$img" --nbd-tcp localhost
one_sentence "--nbd-tcp must be HOST:PORT"
# Config keys go through the same checks.
echo "{\"image\": \"$img\", \"mount\": \"$TEST_DIR/mnt\"}" >"$TEST_DIR/mount.json"
expect_exit 2 "$SEEDER" --config "$TEST_DIR/mount.json"
one_sentence "--mount needs --nbd-socket"
echo "{\"image\": \"$img\", \"chunk_size\": \"64M\"}" >"$TEST_DIR/chunk.json"
expect_exit 2 "$SEEDER" --config "$TEST_DIR/chunk.json"
one_sentence "--chunk-size must be"

echo '{"image": 5}' >"$TEST_DIR/bad.json"
expect_exit 2 "$SEEDER" --config "$TEST_DIR/bad.json"
one_sentence '"image" must be a string'
echo '{"imag": "x"}' >"$TEST_DIR/bad.json"
expect_exit 2 "$SEEDER" --config "$TEST_DIR/bad.json"
one_sentence 'unknown key "imag"'

# A config file creates a sparse image; --listen on the command line wins;
# the JSON ready event gives the ports the kernel chose for port 0.
cat >"$TEST_DIR/seeder.json" <<JSON
{"image": "$TEST_DIR/new.img", "size": "64M", "listen": "127.0.0.1:1", "log_format": "json",
 "nbd_socket": "$TEST_DIR/nbd.sock", "nbd_tcp": "127.0.0.1:0"}
JSON
"$SEEDER" --config "$TEST_DIR/seeder.json" --listen 127.0.0.1:0 \
  >"$TEST_DIR/events" 2>"$TEST_DIR/log" &
pid=$!
cleanup_pids+=("$pid")
port=$(ready_field "$TEST_DIR/events" "$pid" port) || fail "seeder from config: $(cat "$TEST_DIR/log")"
[ "$(ready_field "$TEST_DIR/events" "$pid" listen)" = 127.0.0.1:0 ] || fail "--listen did not win"
[ "$port" -gt 1 ] || fail "ready event port $port"
nbd_port=$(ready_field "$TEST_DIR/events" "$pid" nbd_port)
[ "$nbd_port" -gt 0 ] && [ "$nbd_port" -ne "$port" ] || fail "ready event nbd_port $nbd_port"
[ "$(stat -c %s "$TEST_DIR/new.img")" -eq $((64 << 20)) ] || fail "image not 64 MiB"
[ "$(stat -c %b "$TEST_DIR/new.img")" -lt 1024 ] || fail "image not created sparse"
[ "$(stat -c %a "$TEST_DIR/nbd.sock")" = 600 ] || fail "NBD socket is not mode 0600"
(exec 3<>/dev/tcp/127.0.0.1/"$port") || fail "nothing listens on the gRPC port $port"
(exec 3<>/dev/tcp/127.0.0.1/"$nbd_port") || fail "nothing listens on the NBD port $nbd_port"

# A second seeder on the same port fails with one sentence.
expect_exit 1 "$SEEDER" --image "$TEST_DIR/new.img" --listen "127.0.0.1:$port"
case $ERR in *"cannot listen"*) ;; *) fail "port in use: $ERR" ;; esac

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "seeder exited $status on SIGTERM"
[ ! -e "$TEST_DIR/nbd.sock" ] || fail "NBD socket left behind"
echo "test-seeder-cli: ok"
