#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real Prometheus server (Debian's prometheus package) on loopback scrapes
# both daemons during a migration; its HTTP API must show both targets up
# and the leecher's pulled bytes reaching the image size, the completed
# state, and the seeder's served bytes. Prometheus listens on port 0 and
# the test reads the bound port from its log; its storage is a temp dir.
# Every query of docs/grafana-dashboard.json must parse and name only
# metrics Prometheus scraped from the daemons.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/metrics-lib.sh"
requires jq
requires curl
command -v prometheus >/dev/null 2>&1 ||
  skip "the prometheus binary is missing (scripts/install-deps.sh installs Debian's prometheus)"

start_pair 16 --workers 2 --batch 64K --sync-interval 200

cat >"$TEST_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 250ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: godwit-seeder
    static_configs: [{targets: ['127.0.0.1:$SEEDER_METRICS']}]
  - job_name: godwit-leecher
    static_configs: [{targets: ['127.0.0.1:$LEECHER_METRICS']}]
YAML
prometheus --config.file="$TEST_DIR/prometheus.yml" --web.listen-address=127.0.0.1:0 \
  --storage.tsdb.path="$TEST_DIR/prometheus-data" >"$TEST_DIR/prometheus.log" 2>&1 &
cleanup_pids+=($!)
prom=""
for i in $(seq 1 300); do
  prom=$(sed -n 's/.*msg="Listening on" address=\(127\.0\.0\.1:[0-9]*\).*/\1/p' \
    "$TEST_DIR/prometheus.log" | head -n 1)
  [ -n "$prom" ] && break
  sleep 0.1
done
[ -n "$prom" ] || fail "Prometheus did not start: $(tail -n 5 "$TEST_DIR/prometheus.log")"
echo "Prometheus on $prom"

# query PROMQL: the instant vector's values as "job value" lines.
query() {
  curl -fsS --max-time 5 "http://$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    jq -r '.data.result[] | "\(.metric.job // "-") \(.value[1])"'
}
# wait_query PROMQL EXPECTED: until query prints EXPECTED (30 s).
wait_query() {
  local got=""
  for i in $(seq 1 150); do
    got=$(query "$1" | sort | tr '\n' ';') || true
    [ "$got" = "$2" ] && return 0
    sleep 0.2
  done
  fail "query $1 gave '$got', expected '$2' (see $TEST_DIR/prometheus.log)"
}

wait_query 'up' "godwit-leecher 1;godwit-seeder 1;"
wait_query "godwit_leecher_pulled_bytes_total >= bool $IMAGE_SIZE" "godwit-leecher 1;"
kill -USR1 "$LEECHER_PID" # Finalize
wait_query 'godwit_leecher_state{state="complete"}' "godwit-leecher 1;"
wait_query "godwit_seeder_served_bytes_total >= bool $IMAGE_SIZE" "godwit-seeder 1;"
wait_query 'godwit_leecher_local_chunks == bool godwit_leecher_image_chunks' "godwit-leecher 1;"
wait_query 'max_over_time(godwit_leecher_state{state="precopy"}[5m])' "godwit-leecher 1;"
# A range query over the last two minutes finds the stored samples.
for i in $(seq 1 25); do
  end=$(date +%s.%N)
  curl -sS "http://$prom/api/v1/query_range" \
    --data-urlencode 'query=godwit_leecher_pulled_bytes_total' \
    --data-urlencode "start=$(awk -v n="$end" 'BEGIN { printf "%.3f", n - 120 }')" \
    --data-urlencode "end=$(awk -v n="$end" 'BEGIN { printf "%.3f", n }')" \
    --data-urlencode step=0.5 >"$TEST_DIR/range.json" || true
  jq -e '.data.result[0].values | length > 0' "$TEST_DIR/range.json" >/dev/null 2>&1 && break
  sleep 0.2
done
[ "$i" -lt 25 ] || fail "no range data: $(head -c 300 "$TEST_DIR/range.json")"
# Every expression of the Grafana dashboard is PromQL this Prometheus accepts,
jq -r '.panels[].targets[].expr' "$GODWIT_SOURCE/docs/grafana-dashboard.json" |
  sed 's/\$__rate_interval/5s/g; s/\$leecher/.*/g; s/\$seeder/.*/g' >"$TEST_DIR/exprs"
[ -s "$TEST_DIR/exprs" ] || fail "no expressions in docs/grafana-dashboard.json"
while read -r expr; do
  curl -sS "http://$prom/api/v1/query" --data-urlencode "query=$expr" >"$TEST_DIR/q.json"
  jq -e '.status == "success"' "$TEST_DIR/q.json" >/dev/null ||
    fail "dashboard query $expr: $(cat "$TEST_DIR/q.json")"
done <"$TEST_DIR/exprs"
# ... and every metric a query names is one Prometheus scraped from the
# daemons (valid PromQL of a misspelt name would just draw nothing).
curl -sS "http://$prom/api/v1/label/__name__/values" >"$TEST_DIR/names.json"
jq -r '.data[]' "$TEST_DIR/names.json" >"$TEST_DIR/scraped"
grep -q '^godwit_leecher_pulled_bytes_total$' "$TEST_DIR/scraped" ||
  fail "no godwit names in Prometheus: $(head -c 300 "$TEST_DIR/names.json")"
grep -o 'godwit_[a-z0-9_]*' "$TEST_DIR/exprs" | sort -u >"$TEST_DIR/named"
[ "$(wc -l <"$TEST_DIR/named")" -ge 10 ] || fail "the dashboard names few metrics: $(cat "$TEST_DIR/named")"
while read -r name; do
  grep -qx "$name" "$TEST_DIR/scraped" || fail "the dashboard queries $name, which no daemon exports"
done <"$TEST_DIR/named"
cmp "$TEST_DIR/src.img" "$TEST_DIR/dest.img" || fail "the images differ"
echo "PASS"
