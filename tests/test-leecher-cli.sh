#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# godwit-leecher's command line: --help and --version; exit 2 and one
# sentence for flags that are missing, out of range, conflicting or would
# be ignored (in flags and in a config file alike: --compress among them),
# for garbage TLS files, for a --max-bandwidth that is not a rate, and for a
# --batch that does not fit the seeder's chunk size; without --batch, chunks
# larger than the default batch are pulled whole.
source "$(dirname "$0")/functions.sh"
CTL=$GODWIT_BIN/ctl/godwit-ctl

expect_exit 0 "$LEECHER" --help
case $OUT in *--seeder*--batch*--tls-ca*--config*) ;; *) fail "--help lacks flags: $OUT" ;; esac
expect_exit 0 "$LEECHER" --version
case $OUT in "godwit-leecher "[0-9]*) ;; *) fail "--version printed '$OUT'" ;; esac

run=("$LEECHER" --seeder "unix:$TEST_DIR/none.sock" --image "$TEST_DIR/dest.img")
expect_exit 2 "$LEECHER" --image x
one_sentence "--seeder and --image are required"
expect_exit 2 "${run[@]}" --batch 0
one_sentence "--batch must be from 4K to 16M"
expect_exit 2 "${run[@]}" --batch 32M
one_sentence "--batch must be from 4K to 16M"
expect_exit 2 "${run[@]}" --channels 0
one_sentence "--channels and --sync-interval must be at least 1"
expect_exit 2 "${run[@]}" --channels 1000
one_sentence "--channels must be at most 256"
expect_exit 2 "${run[@]}" --pull-timeout 4000000000
one_sentence "--sync-interval and --pull-timeout must be at most 86400000 ms"
expect_exit 2 "${run[@]}" --auto-finalize-ms 90000000
one_sentence "--auto-finalize-ms must be at most 86400000 ms"
expect_exit 2 "${run[@]}" --converge-rounds 0
one_sentence "--converge-rounds must be from 1 to 10000, not 0"
expect_exit 2 "${run[@]}" --converge-rounds 10001
one_sentence "--converge-rounds must be from 1 to 10000"
echo '{"converge_rounds": 0}' >"$TEST_DIR/converge.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/converge.json"
one_sentence "--converge-rounds must be from 1 to 10000"
expect_exit 2 "${run[@]}" --checksum-retries 101
one_sentence "--checksum-retries must be from 0 to 100, not 101"
echo '{"checksum_retries": 1000}' >"$TEST_DIR/retries.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/retries.json"
one_sentence "--checksum-retries must be from 0 to 100, not 1000"
expect_exit 2 "${run[@]}" --no-checksums --checksum-retries 3
one_sentence "--checksum-retries has no effect with --no-checksums"
expect_exit 2 "${run[@]}" --verify --no-verify
one_sentence "--verify and --no-verify contradict each other"
expect_exit 2 "${run[@]}" --workers 5000
one_sentence "--workers must be at most 1024"
expect_exit 2 "${run[@]}" --compress gzip
one_sentence "--compress must be off, zstd or auto, not gzip"
echo '{"compress": "on"}' >"$TEST_DIR/compress.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/compress.json"
one_sentence "--compress must be off, zstd or auto, not on"
expect_exit 2 "${run[@]}" --mount "$TEST_DIR/mnt"
one_sentence "--mount needs --nbd-socket"
expect_exit 2 "${run[@]}" --control nowhere
one_sentence "--control must be HOST:PORT"
expect_exit 2 "${run[@]}" --log-format yaml
one_sentence "--log-format must be text or json"
echo "not a key" >"$TEST_DIR/garbage.pem"
expect_exit 2 "${run[@]}" --tls-ca "$TEST_DIR/garbage.pem"
one_sentence "--tls-ca needs --tls-cert and --tls-key"
expect_exit 2 "${run[@]}" --tls-key "$TEST_DIR/garbage.pem"
one_sentence "--tls-cert and --tls-key go together"
expect_exit 2 "${run[@]}" --tls-cert "$TEST_DIR/garbage.pem" --tls-key "$TEST_DIR/garbage.pem"
one_sentence "holds no PEM certificate"
expect_exit 2 "${run[@]}" --max-bandwidth fast
one_sentence "--max-bandwidth must be bytes per second such as 50M or 1G"
expect_exit 2 "${run[@]}" --max-bandwidth 50Mb/s
one_sentence "--max-bandwidth must be bytes per second such as 50M or 1G"
echo '{"max_bandwidth": "1.5G"}' >"$TEST_DIR/rate.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/rate.json"
one_sentence "--max-bandwidth must be bytes per second such as 50M or 1G"
echo '{"batch": 0}' >"$TEST_DIR/batch.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/batch.json"
one_sentence "--batch must be from 4K to 16M"
echo "{\"tls_ca\": \"$TEST_DIR/garbage.pem\"}" >"$TEST_DIR/ca.json"
expect_exit 2 "${run[@]}" --config "$TEST_DIR/ca.json"
one_sentence "--tls-ca needs --tls-cert and --tls-key"

# A seeder with 2 MiB chunks.
head -c $((8 << 20)) /dev/urandom >"$TEST_DIR/source.img"
"$SEEDER" --image "$TEST_DIR/source.img" --chunk-size 2M --listen 127.0.0.1:0 \
  --log-format json >"$TEST_DIR/seeder.events" 2>"$TEST_DIR/seeder.log" &
cleanup_pids+=($!)
seeder=(--seeder "127.0.0.1:$(ready_field "$TEST_DIR/seeder.events" $! port)")

# A batch below the seeder's chunk size is refused once Info told it.
expect_exit 2 "$LEECHER" "${seeder[@]}" --image "$TEST_DIR/small.img" --control 127.0.0.1:0 \
  --batch 1M
case $ERR in *"--batch 1048576 must be from the seeder's chunk size (2097152)"*) ;;
*) fail "--batch below the chunk size: $ERR" ;; esac

# Without --batch the leecher pulls 2 MiB chunks (above the 1M default) whole
# (and a --max-bandwidth above what it needs lets it; in the config as a
# number of bytes per second).
echo '{"max_bandwidth": 1073741824}' >"$TEST_DIR/cap.json"
"$LEECHER" "${seeder[@]}" --image "$TEST_DIR/dest.img" --control 127.0.0.1:0 --log-format json \
  --config "$TEST_DIR/cap.json" >"$TEST_DIR/leecher.events" 2>"$TEST_DIR/leecher.log" &
leecher=$!
cleanup_pids+=($leecher)
cport=$(ready_field "$TEST_DIR/leecher.events" $leecher control_port 20)
"$CTL" --control "127.0.0.1:$cport" --timeout 60 wait-local >/dev/null ||
  fail "pre-copy with 2 MiB chunks did not finish: $(cat "$TEST_DIR/leecher.log")"
cmp "$TEST_DIR/source.img" "$TEST_DIR/dest.img" || fail "the copy differs"
cap=$("$CTL" --control "127.0.0.1:$cport" status --json | jq .max_bandwidth)
[ "$cap" = 1073741824 ] || fail "config max_bandwidth 1073741824 gave a cap of $cap"
kill -TERM $leecher
wait $leecher || fail "leecher exit status"
echo "test-leecher-cli: ok"
