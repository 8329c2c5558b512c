#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Draws docs/metrics-dashboard.png: the panels of docs/grafana-dashboard.json
# as a real Prometheus recorded them during a real migration. Grafana is not
# in Debian, so this is not a Grafana screenshot: the script runs a seeder,
# a leecher behind godwit-linkem (a capped, delayed link), a writer, and
# Debian's prometheus scraping both daemons every 250 ms; then it runs each
# panel's PromQL over the run with /api/v1/query_range and plots the series
# with gnuplot, one plot per panel, in the dashboard's order.
#   scripts/metrics-figure.sh [BUILD_DIR] [OUT.png]
# Needs: a build, prometheus, gnuplot (gnuplot-nox), jq, curl, nbdcopy. About 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
out=$(realpath -m "${2:-docs/metrics-dashboard.png}")
for tool in prometheus gnuplot jq curl nbdcopy; do
  command -v "$tool" >/dev/null || { echo "metrics-figure: $tool is missing" >&2; exit 1; }
done
size_mb=${SIZE_MB:-256} link_mbps=${LINK_MBPS:-5} write_mbps=${WRITE_MBPS:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/godwit-figure-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ready() { # ready EVENTS FIELD
  for _ in $(seq 1 300); do
    v=$(jq -r --arg f "$2" 'select(.event == "ready") | .[$f] // empty' "$1" 2>/dev/null | head -n 1)
    [ -n "$v" ] && { echo "$v"; return; }
    sleep 0.05
  done
  echo "metrics-figure: no ready event in $1" >&2
  exit 1
}

head -c "$((size_mb << 20))" /dev/urandom >"$dir/src.img"
"$build/seeder/godwit-seeder" --image "$dir/src.img" --listen 127.0.0.1:0 --nbd-socket "$dir/src.sock" \
  --metrics 127.0.0.1:0 --log-format json >"$dir/seeder.events" 2>"$dir/seeder.log" &
pids+=($!)
seeder_port=$(ready "$dir/seeder.events" port)
seeder_metrics=$(ready "$dir/seeder.events" metrics_port)
"$build/bench/godwit-linkem" --listen 127.0.0.1:0 --target "127.0.0.1:$seeder_port" --rtt-ms 2 \
  --rate-mbps "$link_mbps" --log-format json >"$dir/linkem.events" 2>"$dir/linkem.log" &
pids+=($!)
link_port=$(ready "$dir/linkem.events" port)

cat >"$dir/prometheus.yml" <<YAML
global: {scrape_interval: 250ms, scrape_timeout: 200ms}
scrape_configs:
  - job_name: godwit-seeder
    static_configs: [{targets: ['127.0.0.1:$seeder_metrics']}]
  - job_name: godwit-leecher
    file_sd_configs: [{files: ['$dir/leecher-target.json'], refresh_interval: 1s}]
YAML
echo '[]' >"$dir/leecher-target.json"
prometheus --config.file="$dir/prometheus.yml" --web.listen-address=127.0.0.1:0 \
  --storage.tsdb.path="$dir/tsdb" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
prom=""
for _ in $(seq 1 300); do
  prom=$(sed -n 's/.*msg="Listening on" address=\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$dir/prometheus.log" | head -n 1)
  [ -n "$prom" ] && break
  sleep 0.1
done
[ -n "$prom" ] || { echo "metrics-figure: Prometheus did not start" >&2; exit 1; }

start=$(date +%s.%N)
"$build/bench/godwit-writer" --socket "$dir/src.sock" --rate-mbps "$write_mbps" --block 64K >"$dir/writer.log" 2>&1 &
writer=$!
pids+=($writer)
sleep 2
"$build/leecher/godwit-leecher" --seeder "127.0.0.1:$link_port" --image "$dir/dest.img" \
  --control "unix:$dir/control.sock" --nbd-socket "$dir/dest.sock" --metrics 127.0.0.1:0 \
  --log-format json >"$dir/leecher.events" 2>"$dir/leecher.log" &
leecher=$!
pids+=($leecher)
echo "[{\"targets\": [\"127.0.0.1:$(ready "$dir/leecher.events" metrics_port)\"]}]" >"$dir/leecher-target.json"
# Pre-copy with the writer running for about 60% of the first pass (linkem
# caps each connection; the leecher opens 4), then Finalize: the rest
# arrives in post-copy while the destination app reads the whole export.
pass_s=$((size_mb * 6 / 10 / link_mbps / 4 + 1))
echo "metrics-figure: pre-copy for ${pass_s} s (${size_mb} MiB, 4 x ${link_mbps} MB/s, writer ${write_mbps} MB/s)"
sleep "$pass_s"
kill "$writer"
sleep 0.5
kill -USR1 "$leecher"
# The destination app reads the whole export at once: on-demand pulls of
# what has not arrived yet.
for _ in $(seq 1 100); do
  grep -q '"event":"finalized"' "$dir/leecher.events" && break
  sleep 0.05
done
nbdcopy "nbd+unix:///?socket=$dir/dest.sock" null: || echo "metrics-figure: nbdcopy failed" >&2
for _ in $(seq 1 600); do
  grep -q '"event":"complete"' "$dir/leecher.events" && break
  sleep 0.1
done
sleep 3
end=$(date +%s.%N)
cmp "$dir/src.img" "$dir/dest.img" && echo "metrics-figure: the images match"

# One data file per panel: columns t, then one per query (NaN where absent).
jq -c '.panels[] | select(.type == "timeseries") | {title, unit: .fieldConfig.defaults.unit,
  targets: [.targets[] | {expr, legend: .legendFormat}]}' docs/grafana-dashboard.json >"$dir/panels"
n=0
: >"$dir/plot.gp"
while read -r panel; do
  n=$((n + 1))
  title=$(jq -r .title <<<"$panel")
  unit=$(jq -r .unit <<<"$panel")
  cols=""
  k=0
  while read -r target; do
    k=$((k + 1))
    expr=$(jq -r .expr <<<"$target" | sed 's/\$__rate_interval/2s/g; s/\$leecher/.*/g; s/\$seeder/.*/g')
    curl -fsS "http://$prom/api/v1/query_range" --data-urlencode "query=$expr" \
      --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode step=0.5 |
      jq -r --argjson t0 "$start" '.data.result[0].values // [] | .[] | "\(.[0] - $t0) \(.[1])"' \
        >"$dir/p$n-$k.dat"
    legend=$(jq -r .legend <<<"$target")
    cols="$cols '$dir/p$n-$k.dat' using 1:2 with lines lw 2 title '$legend',"
  done < <(jq -c '.targets[]' <<<"$panel")
  case $unit in
    percentunit) ylabel="fraction" ;;
    Bps) ylabel="MB/s"; for f in "$dir"/p$n-*.dat; do awk '{ print $1, $2 / 1e6 }' "$f" >"$f.x"; mv "$f.x" "$f"; done ;;
    s) ylabel="seconds" ;;
    *) ylabel="" ;;
  esac
  {
    echo "set title '$title'"
    echo "set ylabel '$ylabel'"
    echo "plot ${cols%,}"
  } >>"$dir/plot.gp"
done <"$dir/panels"
rows=$(((n + 1) / 2))
{
  echo "set terminal pngcairo size 1400,$((rows * 330)) font 'DejaVu Sans,10'"
  echo "set output '$out'"
  echo "set multiplot layout $rows,2 title 'godwit migration: the dashboard panels queried from a real Prometheus (not Grafana)'"
  echo "set xlabel 'seconds since start'"
  echo "set key top left"
  echo "set grid"
  cat "$dir/plot.gp"
  echo "unset multiplot"
} >"$dir/all.gp"
gnuplot "$dir/all.gp"
echo "metrics-figure: wrote $out ($n panels)"
