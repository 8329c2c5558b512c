#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The copy floor over TLS (godwit-tcp-baseline --copy --tls, what the TLS
# throughput figures are measured against): a file crosses byte-exact over
# TLS 1.3 streams and in plaintext, each line names the cipher and carries
# MB/s and CPU per GiB; --tls without --copy is exit 2 and one sentence.
source "$(dirname "$0")/functions.sh"
BASELINE=$GODWIT_BIN/bench/godwit-tcp-baseline
cd "$TEST_DIR"
head -c $((8 << 20)) /dev/urandom >source.img
head -c 12345 /dev/urandom >>source.img # a tail no stream's share ends on

for mode in tls plain; do
  rm -f copy.img
  line=$("$BASELINE" --copy source.img --to copy.img --streams 3 $([ $mode = tls ] && echo --tls))
  cmp source.img copy.img || fail "$mode copy differs from the source"
  cipher=$(jq -er .cipher <<<"$line") || fail "no cipher in: $line"
  case $mode:$cipher in
  tls:TLS_AES_*_GCM_SHA* | tls:TLS_CHACHA20_POLY1305_SHA256 | plain:plaintext) ;;
  *) fail "$mode copy reports cipher $cipher" ;;
  esac
  jq -e '.mb_per_s > 0 and .cpu_s_per_gib > 0 and .streams == 3' <<<"$line" >/dev/null ||
    fail "$mode copy line lacks figures: $line"
done

expect_exit 2 "$BASELINE" --tls
one_sentence "--tls needs --copy"
