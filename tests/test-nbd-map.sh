#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seeder's export tells where its image has holes (NBD_CMD_BLOCK_STATUS,
# base:allocation): nbdinfo --map of a sparse image matches nbdinfo --map of
# `nbdkit file` on the same file, and nbdcopy of a 2 GiB image with 10% data
# in 1 MiB extents reads only the data and leaves the destination as sparse
# as the source, byte for byte equal.
source "$(dirname "$0")/functions.sh"
requires nbdinfo
requires nbdcopy
requires nbdkit

# serve_seeder IMAGE NAME: the seeder's NBD export of IMAGE on NAME.sock.
serve_seeder() {
  "$SEEDER" --image "$1" --listen 127.0.0.1:0 --nbd-socket "$TEST_DIR/$2.sock" \
    2>"$TEST_DIR/$2.log" &
  cleanup_pids+=($!)
  wait_path "$TEST_DIR/$2.sock" || fail "seeder did not start: $(cat "$TEST_DIR/$2.log")"
}
uri() { echo "nbd+unix:///?socket=$TEST_DIR/$1.sock"; }

# Data at aligned and unaligned places, a few bytes in the middle of a hole,
# and at the (unaligned) end; holes between.
image=$TEST_DIR/sparse.img
truncate -s $(((64 << 20) + 1234)) "$image"
write() { head -c "$2" /dev/urandom | dd of="$image" bs=64K seek="$1" oflag=seek_bytes conv=notrunc status=none; }
write 0 1M
write $((5 << 20)) $((1 << 20))
write 12000000 12288
write 30000001 100
write $((64 << 20)) 1234
serve_seeder "$image" seeder
nbdkit -U "$TEST_DIR/nbdkit.sock" -f file "$image" 2>"$TEST_DIR/nbdkit.log" &
cleanup_pids+=($!)
wait_path "$TEST_DIR/nbdkit.sock" || fail "nbdkit did not start: $(cat "$TEST_DIR/nbdkit.log")"

nbdinfo "$(uri seeder)" | grep -q "base:allocation" || fail "the seeder lists no base:allocation"
nbdinfo --map "$(uri seeder)" >"$TEST_DIR/seeder.map"
nbdinfo --map "$(uri nbdkit)" >"$TEST_DIR/nbdkit.map"
grep -q "hole,zero" "$TEST_DIR/seeder.map" || fail "no holes in the map: $(cat "$TEST_DIR/seeder.map")"
diff "$TEST_DIR/nbdkit.map" "$TEST_DIR/seeder.map" >&2 || fail "the seeder's map differs from nbdkit's"

# 2 GiB, 10% data: 1 MiB of data every 10 MiB.
big=$TEST_DIR/big.img
truncate -s 2G "$big"
head -c 1M /dev/urandom >"$TEST_DIR/mib"
perl -e 'open(my $m, "<", $ARGV[0]) or die; read($m, my $mib, 1 << 20);
  open(my $f, "+<", $ARGV[1]) or die;
  for (my $i = 0; $i < 2048; $i += 10) { sysseek($f, $i << 20, 0); syswrite($f, $mib) == 1 << 20 or die }' \
  "$TEST_DIR/mib" "$big" || fail "cannot write the sparse image"
serve_seeder "$big" big
nbdcopy --verbose "$(uri big)" "$TEST_DIR/copy.img" 2>"$TEST_DIR/nbdcopy.log" ||
  fail "nbdcopy failed: $(tail -5 "$TEST_DIR/nbdcopy.log")"
grep -q "nbd_block_status: enter" "$TEST_DIR/nbdcopy.log" || fail "nbdcopy asked for no block status"
read_bytes=$(grep -o "nbd_aio_pread: enter: buf=<buf> count=[0-9]*" "$TEST_DIR/nbdcopy.log" |
  awk -F= '{s += $NF} END {print s + 0}')
source_bytes=$(($(stat -c %b "$big") * 512))
copy_bytes=$(($(stat -c %b "$TEST_DIR/copy.img") * 512))
[ "$read_bytes" -le $((source_bytes * 11 / 10)) ] ||
  fail "nbdcopy read $read_bytes bytes of a source with $source_bytes allocated"
[ "$copy_bytes" -le $((source_bytes * 11 / 10)) ] ||
  fail "the copy has $copy_bytes bytes allocated, the source $source_bytes"
cmp "$big" "$TEST_DIR/copy.img" || fail "the copy differs"
echo "test-nbd-map: ok (read $read_bytes bytes, copy allocates $copy_bytes, source $source_bytes)"
