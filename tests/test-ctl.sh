#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# godwit-ctl against a real seeder and leecher: status as text and JSON,
# watch (figures never go backwards; ends 0 at COMPLETE), wait local and
# complete (and the wait-local/wait-complete aliases), --timeout, finalize,
# abort, watch and wait of a migration that ends FAILED (exit 1, the error),
# switchover (started before the leecher listens; run again once done),
# --help, exit 2 with one sentence for bad input, and the TLS flags against
# an mTLS pair.
source "$(dirname "$0")/functions.sh"
requires jq
CTL=$GODWIT_BIN/ctl/godwit-ctl
cd "$TEST_DIR"

# --help, overall and per command.
expect_exit 0 "$CTL" --help
case $OUT in *status*watch*wait*finalize*info*abort*--tls-ca*) ;; *) fail "--help: $OUT" ;; esac
expect_exit 0 "$CTL" status --help
case $OUT in *"--control ADDR:PORT status [--json]"*) ;; *) fail "status --help: $OUT" ;; esac
expect_exit 0 "$CTL" wait --help
case $OUT in *"wait local|complete"*--timeout*) ;; *) fail "wait --help: $OUT" ;; esac
expect_exit 0 "$CTL" switchover --help
case $OUT in *"switchover [--json]"*finalizes*COMPLETE*) ;; *) fail "switchover --help: $OUT" ;; esac

# Bad input: exit 2 and one sentence, before any call.
bad() { # bad SENTENCE ARGS...
  local want=$1
  shift
  expect_exit 2 "$CTL" "$@"
  one_sentence "$want"
}
c=(--control 127.0.0.1:1)
bad "give a command"
bad 'unknown command "stats"' "${c[@]}" stats
bad 'status takes no arguments, not "now"' "${c[@]}" status now
bad "wait needs one of local|complete" "${c[@]}" wait
bad 'wait needs local or complete, not "soon"' "${c[@]}" wait soon
bad 'wait-local takes no arguments' "${c[@]}" wait-local complete
bad "status needs --control ADDR:PORT" status
bad "abort talks to the seeder: give --seeder ADDR:PORT, not --control" "${c[@]}" abort
bad "status talks to the leecher" --seeder 127.0.0.1:1 status
bad "--control must be HOST:PORT" --control nowhere status
bad '--timeout: "soon" is not a non-negative integer' "${c[@]}" --timeout soon status
bad "--timeout must be at most 86400 s" "${c[@]}" wait local --timeout 90000
bad "--interval must be from 10 to 3600000 ms, not 5" "${c[@]}" watch --interval 5
bad "--interval applies to watch only, not to status" "${c[@]}" status --interval 100
bad "--json does not apply to finalize" "${c[@]}" finalize --json
bad 'switchover takes no arguments, not "now"' "${c[@]}" switchover now
bad "--interval applies to watch only, not to switchover" "${c[@]}" switchover --interval 100
bad "unknown option --colour" "${c[@]}" status --colour
bad "option --timeout needs a value" "${c[@]}" status --timeout
bad "--tls-cert and --tls-key go together" "${c[@]}" status --tls-cert x.crt
bad "--tls-cert and --tls-key need --tls-ca" "${c[@]}" status --tls-cert x.crt --tls-key x.key
echo "not a certificate" >garbage.pem
bad "--tls-ca garbage.pem holds no PEM certificate" "${c[@]}" status --tls-ca garbage.pem
expect_exit 1 "$CTL" "${c[@]}" --timeout 2 status
one_sentence "Status failed"

# start_pair NAME FLAGS...: a seeder of a 4 MiB image and a leecher pulling
# it at 1 MiB/s (so pre-copy lasts a few seconds), both with FLAGS; sets
# $control to the leecher's control address, $sport to the seeder's port.
start_pair() {
  local name=$1
  shift
  head -c $((4 << 20)) /dev/urandom >"$name-source.img"
  "$SEEDER" --image "$name-source.img" --listen 127.0.0.1:0 --chunk-size 64K --log-format json \
    "$@" >"$name-seeder.events" 2>"$name-seeder.log" &
  cleanup_pids+=($!)
  sport=$(ready_field "$name-seeder.events" $! port)
  "$LEECHER" --seeder "127.0.0.1:$sport" --image "$name-dest.img" --nbd-socket "$name.sock" \
    --control 127.0.0.1:0 --max-bandwidth 1M --log-format json "$@" \
    >"$name-leecher.events" 2>"$name-leecher.log" &
  leecher=$!
  cleanup_pids+=($leecher)
  control=127.0.0.1:$(ready_field "$name-leecher.events" $leecher control_port 20)
}

start_pair plain
ctl=("$CTL" --control "$control")
"${ctl[@]}" watch --json --interval 50 >watch.json 2>watch.err &
watcher=$!
cleanup_pids+=($watcher)

# status: the text block and the JSON object agree on the image.
expect_exit 0 "${ctl[@]}" status
for line in "state:               PRECOPY" "chunks local:" "bytes pulled:" "throughput:" \
  "predicted downtime:" "sync rounds:" "retries:" "bandwidth cap:       1.0 MiB/s"; do
  grep -qF -- "$line" <<<"$OUT" || fail "status lacks '$line': $OUT"
done
expect_exit 0 "${ctl[@]}" status --json
jq -e '.state == "PRECOPY" and .chunks_total == 64 and .max_bandwidth == 1048576 and
  (.sync_rounds | type == "number") and (.pull_retries | type == "number") and
  (.bandwidth_throttled_us | type == "number")' <<<"$OUT" >/dev/null ||
  fail "status --json: $OUT"

# wait complete cannot be reached before Finalize: --timeout ends it, exit 1.
expect_exit 1 "${ctl[@]}" wait complete --timeout 1
case $ERR in *"was not complete after 1 s (--timeout)"*) ;; *) fail "wait --timeout: $ERR" ;; esac
case $OUT in "state:"*) ;; *) fail "wait prints the last Status as text: $OUT" ;; esac
# switchover waits for pre-copy first: still pulling after 1 s, it ends
# there (exit 1) without finalizing.
expect_exit 1 "${ctl[@]}" switchover --timeout 1
case $ERR in *"was not local after 1 s (--timeout)"*) ;; *) fail "switchover --timeout: $ERR" ;; esac
expect_exit 0 "${ctl[@]}" status --json
jq -e '.state == "PRECOPY"' <<<"$OUT" >/dev/null || fail "switchover finalized early: $OUT"

expect_exit 0 "${ctl[@]}" wait local --timeout 60
grep -qF "chunks local:        64 / 64 (100.0%)" <<<"$OUT" || fail "wait local: $OUT"
expect_exit 0 "${ctl[@]}" finalize
jq -e '.downtime_us > 0' <<<"$OUT" >/dev/null || fail "finalize: $OUT"
expect_exit 0 "${ctl[@]}" --timeout 60 wait-complete
jq -e '.state == "COMPLETE" and .chunks_local == 64' <<<"$OUT" >/dev/null ||
  fail "wait-complete prints JSON as it did: $OUT"
cmp plain-source.img plain-dest.img || fail "the copy differs"

# watch ended by itself at COMPLETE, exit 0, and never went backwards.
status=0
wait $watcher || status=$?
[ $status -eq 0 ] || fail "watch exited $status: $(cat watch.err)"
[ "$(wc -l <watch.json)" -ge 5 ] || fail "watch printed $(wc -l <watch.json) lines"
jq -s -e 'def rank: {"PRECOPY":1,"FINALIZING":2,"POSTCOPY":3,"COMPLETE":4}[.state];
  (last.state == "COMPLETE") and
  ([.[] | [rank, .bytes_pulled, .sync_rounds]] as $v |
   all(range(1; $v | length); $v[.] as $b | $v[. - 1] as $a |
       $b[0] >= $a[0] and $b[1] >= $a[1] and $b[2] >= $a[2]))' watch.json >/dev/null ||
  fail "watch went backwards or did not end at COMPLETE: $(cat watch.json)"
expect_exit 0 "${ctl[@]}" watch
case $OUT in *" COMPLETE "*"chunks 64/64 (100.0%)"*) ;; *) fail "watch as text: $OUT" ;; esac
kill -TERM $leecher
wait $leecher || fail "leecher exit status"

# A migration that ends FAILED: godwit-ctl abort on the seeder in pre-copy.
# watch prints the FAILED line, then the leecher's error as one sentence on
# stderr, and exits 1; status shows the state and the error; wait exits 1.
start_pair aborted
ctl=("$CTL" --control "$control")
"${ctl[@]}" watch --interval 50 >watch-failed.out 2>watch-failed.err &
watcher=$!
cleanup_pids+=($watcher)
wait_path aborted-dest.img || fail "the aborted leecher made no image"
for _ in $(seq 1 100); do
  grep -q " PRECOPY " watch-failed.out && break
  sleep 0.05
done
grep -q " PRECOPY " watch-failed.out || fail "watch showed no PRECOPY line: $(cat watch-failed.out)"
expect_exit 0 "$CTL" --seeder "127.0.0.1:$sport" abort
jq -e '.previous_state == "TRACKING" and .ended_sessions >= 1' <<<"$OUT" >/dev/null ||
  fail "abort: $OUT"
status=0
timeout 60 tail --pid=$watcher -f /dev/null || fail "watch did not end after the abort"
wait $watcher || status=$?
[ $status -eq 1 ] || fail "watch of a FAILED migration exited $status, expected 1"
last=$(tail -n1 watch-failed.out)
case $last in *" FAILED "*"chunks "*) ;; *) fail "watch's last line is not FAILED: $last" ;; esac
ERR=$(cat watch-failed.err)
one_sentence "godwit-ctl: the migration failed: "
! grep -q " COMPLETE " watch-failed.out || fail "watch showed COMPLETE: $(cat watch-failed.out)"
expect_exit 0 "${ctl[@]}" status
grep -qF "state:               FAILED" <<<"$OUT" || fail "status after the abort: $OUT"
expect_exit 0 "${ctl[@]}" status --json
reason=$(jq -er 'select(.state == "FAILED") | .error' <<<"$OUT") || fail "status --json: $OUT"
[ -n "$reason" ] || fail "a FAILED status without an error: $OUT"
grep -qF -- "$reason" watch-failed.err || fail "watch's sentence is not the error '$reason'"
expect_exit 1 "${ctl[@]}" wait complete --timeout 10
one_sentence "the migration failed: $reason"
cmp -s aborted-source.img aborted-dest.img && fail "an aborted pre-copy left a whole copy"
kill -TERM $leecher
status=0
wait $leecher || status=$?
[ $status -eq 1 ] || fail "the leecher of a FAILED migration exited $status, expected 1"

# switchover: the whole hand-over in one command. Started before the leecher
# (its control socket does not exist yet), it asks again until the leecher
# answers, waits for pre-copy, finalizes and waits for COMPLETE.
head -c $((4 << 20)) /dev/urandom >sw-source.img
"$SEEDER" --image sw-source.img --listen 127.0.0.1:0 --chunk-size 64K --log-format json \
  >sw-seeder.events 2>sw-seeder.log &
cleanup_pids+=($!)
sport=$(ready_field sw-seeder.events $! port)
sw=(--control "unix:$TEST_DIR/sw-control.sock")
"$CTL" "${sw[@]}" --timeout 120 switchover --json >sw.json 2>sw.err &
switcher=$!
cleanup_pids+=($switcher)
sleep 0.3 # its first polls find no leecher
"$LEECHER" --seeder "127.0.0.1:$sport" --image sw-dest.img "${sw[@]}" --max-bandwidth 8M \
  --log-format json >sw-leecher.events 2>sw-leecher.log &
leecher=$!
cleanup_pids+=($leecher)
status=0
wait $switcher || status=$?
[ $status -eq 0 ] || fail "switchover exited $status: $(cat sw.err)"
jq -e '.state == "COMPLETE" and .local_s >= 0.3 and .local_s <= .finalized_s and
  .finalized_s <= .complete_s and .finalize_ms >= 0 and .downtime_us > 0 and
  .dirty_chunks == 0' sw.json >/dev/null || fail "switchover --json: $(cat sw.json)"
cmp sw-source.img sw-dest.img || fail "the switchover's copy differs"
grep -q '"event":"finalized"' sw-leecher.events || fail "the leecher logged no Finalize"
# Again, as text: finalized already, it goes straight on (Finalize answers
# the downtime it measured) and ends at COMPLETE.
expect_exit 0 "$CTL" "${sw[@]}" switchover
downtime=$(jq -r '.downtime_us / 1000 * 100 | round / 100' sw.json)
[ "$(wc -l <<<"$OUT")" -eq 3 ] || fail "switchover prints one line per step: $OUT"
grep -q "^pre-copy caught up after .*: 64 / 64 chunks local$" <<<"$OUT" || fail "step 1: $OUT"
grep -q "^finalized after .* ms: downtime .* ms, 0 dirty chunks$" <<<"$OUT" || fail "step 2: $OUT"
awk -v want="$downtime" '/^finalized/ {d = $6} END {exit !(d + 0.006 > want && d - 0.006 < want)}' \
  <<<"$OUT" || fail "a second switchover reports another downtime than $downtime ms: $OUT"
grep -q "^complete after .* s: every chunk of 64 is local$" <<<"$OUT" || fail "step 3: $OUT"
kill -TERM $leecher
wait $leecher || fail "leecher exit status"

# The TLS flags against an mTLS pair: the same files as the daemons take.
requires openssl
make_test_ca ca
make_test_cert server ca
make_test_cert client ca
# Both daemons serve with server.crt; the leecher dials the seeder with it too
# (the CA signed it, so it is a valid client certificate).
start_pair tls --tls-ca ca.crt --tls-cert server.crt --tls-key server.key
tls=(--tls-ca ca.crt --tls-cert client.crt --tls-key client.key)
expect_exit 0 "$CTL" --control "$control" "${tls[@]}" status --json
jq -e '.state == "PRECOPY" or .state == "COMPLETE"' <<<"$OUT" >/dev/null || fail "mTLS status: $OUT"
expect_exit 1 "$CTL" --control "$control" --timeout 2 status
one_sentence "Status failed"
expect_exit 1 "$CTL" --control "$control" --tls-ca ca.crt --timeout 2 status
one_sentence "Status failed"
kill -TERM $leecher
wait $leecher || fail "leecher exit status"
echo "test-ctl: ok"
