# SPDX-License-Identifier: MIT
# Helpers for the metrics tests (sourced after functions.sh): start a seeder
# and a leecher with --metrics on port 0, read the bound ports from their
# ready events, scrape /metrics and pick values out of a scrape.

# ready_field EVENTS FIELD: FIELD of the ready event in the JSON log EVENTS.
ready_field() {
  local i value
  for i in $(seq 1 300); do
    value=$(jq -r --arg f "$2" 'select(.event == "ready") | .[$f] // empty' "$1" 2>/dev/null |
      head -n 1) || true
    [ -n "$value" ] && { echo "$value"; return 0; }
    sleep 0.05
  done
  fail "no ready event with $2 in $1: $(cat "$1")"
}

# scrape PORT OUT: GET /metrics from 127.0.0.1:PORT into OUT.
scrape() {
  curl -fsS --max-time 5 -o "$2" "http://127.0.0.1:$1/metrics" || fail "scraping port $1 failed"
}

# value SCRAPE SERIES: the sample value of SERIES (name with labels, exactly
# as exposed) in the file SCRAPE; fails if it is absent.
value() {
  local v
  v=$(awk -v s="$2" '$1 == s { print $2; exit }' "$1")
  [ -n "$v" ] || fail "no series $2 in $1"
  echo "$v"
}

# ge A B: true if the number A >= B (floats allowed).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# start_pair SIZE_MB [LEECHER FLAGS...]: a seeder on a random image of SIZE_MB
# MiB (64K chunks) and a leecher pulling it, both with --metrics on port 0.
# Sets SEEDER_PID LEECHER_PID SEEDER_METRICS LEECHER_METRICS IMAGE_SIZE.
start_pair() {
  local size_mb=$1
  shift
  head -c "$((size_mb << 20))" /dev/urandom >"$TEST_DIR/src.img"
  IMAGE_SIZE=$((size_mb << 20))
  "$SEEDER" --image "$TEST_DIR/src.img" --chunk-size 64K --listen 127.0.0.1:0 \
    --nbd-socket "$TEST_DIR/src.sock" --metrics 127.0.0.1:0 --log-format json \
    >"$TEST_DIR/seeder.events" 2>"$TEST_DIR/seeder.log" &
  SEEDER_PID=$!
  cleanup_pids+=("$SEEDER_PID")
  local grpc_port
  grpc_port=$(ready_field "$TEST_DIR/seeder.events" port)
  SEEDER_METRICS=$(ready_field "$TEST_DIR/seeder.events" metrics_port)
  "$LEECHER" --seeder "127.0.0.1:$grpc_port" --image "$TEST_DIR/dest.img" \
    --control "unix:$TEST_DIR/control.sock" --nbd-socket "$TEST_DIR/dest.sock" \
    --metrics 127.0.0.1:0 --log-format json "$@" \
    >"$TEST_DIR/leecher.events" 2>"$TEST_DIR/leecher.log" &
  LEECHER_PID=$!
  cleanup_pids+=("$LEECHER_PID")
  LEECHER_METRICS=$(ready_field "$TEST_DIR/leecher.events" metrics_port)
}
