#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Pull throughput and downtime of a full migration on loopback.
#   bench/pull-bench.sh [BUILD_DIR] [SIZE_MB] [RUNS] [GRID]
# GRID is "WORKERSxCHANNELS ..." (default "1x1 4x1 4x4 16x4 64x8"; WORKERS
# "auto" leaves --workers out, so the leecher picks it). For each
# cell, RUNS times: a seeder on an idle SIZE_MB image (page-cached), a
# leecher pulling it (MB/s, peak RSS, CPU seconds per GiB of each daemon),
# then Finalize with 1% of the chunks dirty (DIRTY_PCT) and its downtime (no
# last Sync: the freeze carries the whole dirty set); the images must match.
# One JSON line per cell with median, min and max of each figure, plus the
# baselines of the same run: loopback TCP (one stream) and the copy floor
# (the same file moved with bare pread/send/recv/pwrite, 1 and 4 streams).
# RTT_MS=N puts godwit-linkem with that round-trip time between them;
# CHUNK=BYTES sets the chunk size; LEECHER_ARGS adds leecher flags;
# BASELINES=0 skips the baselines (the ratios are then null).
# TLS=1 runs every migration over mTLS (a throwaway CA and certificates made
# with openssl in the temp dir, as test-tls does); TLS=compare takes turns,
# run by run, between plaintext and mTLS and prints a line for each, the
# mTLS one with ratio_to_plaintext (its median MB/s over plaintext's). With
# TLS set, the copy floor (4 streams) is also measured in plaintext and over
# TLS 1.3 made with OpenSSL on the socket (no gRPC), taking turns: what the
# cipher alone costs (tls_floor line), and the mTLS line gains
# cipher_bound_ratio: plaintext's CPU per GiB over plaintext's plus the
# cipher's, the ratio a CPU-bound pull could reach if TLS cost only that.
set -euo pipefail
build=${1:-build-release}
size_mb=${2:-1024}
runs=${3:-3}
grid=${4:-"1x1 4x1 4x4 16x4 64x8"}
chunk=${CHUNK:-262144}   # CHUNK=bytes: the seeder's chunk size
ticks=$(getconf CLK_TCK)
for b in seeder/godwit-seeder leecher/godwit-leecher ctl/godwit-ctl bench/godwit-writer bench/godwit-tcp-baseline; do
  [ -x "$build/$b" ] || { echo "pull-bench: build $build/$b first (cmake --build $build)" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
tls_mode=${TLS:-0}
case $tls_mode in 0 | 1 | compare) ;; *) echo "pull-bench: TLS is 0, 1 or compare" >&2; exit 2 ;; esac
if [ "$tls_mode" != 0 ]; then   # a CA, a seeder and a leecher certificate for 127.0.0.1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout "$dir/ca.key" \
    -out "$dir/ca.crt" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
  for who in seeder leecher; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$dir/$who.key" \
      -out "$dir/$who.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$who.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/san.ext" -out "$dir/$who.crt" 2>/dev/null
  done
fi
# tls_flags WHO ON: the --tls-* flags of WHO (seeder, leecher) when ON is 1
tls_flags() { [ "$2" = 1 ] && echo "--tls-ca $dir/ca.crt --tls-cert $dir/$1.crt --tls-key $dir/$1.key" || true; }
head -c $((size_mb << 20)) /dev/urandom >"$dir/source.img"
sync "$dir/source.img"   # on disk: the seeder's flushes must not pay for our writes
cat "$dir/source.img" >/dev/null

# ports below the ephemeral range (32768+), so no outgoing connection holds one
port() { local p; for p in $(shuf -i 20000-32000 -n 20); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }
median() { sort -n | awk '{a[NR]=$1} END {printf "{\"median\":%g,\"min\":%g,\"max\":%g}", a[int((NR+1)/2)], a[1], a[NR]}'; }
steal() { awk '/^cpu / {print $9}' /proc/stat; }   # host steal, in ticks

baseline="" copy_floor=""
if [ "${BASELINES:-1}" = 1 ]; then   # BASELINES=0: the caller measured them already
  baseline=$("$build/bench/godwit-tcp-baseline" --seconds 2 | field mb_per_s)
  echo "{\"baseline\":\"loopback TCP, one stream\",\"mb_per_s\":$baseline}"
  for streams in 1 4; do
    for r in 1 2 3; do
      "$build/bench/godwit-tcp-baseline" --copy "$dir/source.img" --to "$dir/copy.img" --streams $streams | field mb_per_s
    done | median >"$dir/copy"
    echo "{\"baseline\":\"copy floor\",\"streams\":$streams,\"size_mb\":$size_mb,\"mb_per_s\":$(cat "$dir/copy")}"
    [ "$streams" = 4 ] && copy_floor=$(field median <"$dir/copy")
  done
  rm -f "$dir/copy.img"
fi

tls_floor_cpu=""   # CPU s/GiB the cipher adds to the copy floor
if [ "$tls_mode" != 0 ]; then
  : >"$dir/floor-plain"; : >"$dir/floor-tls"
  for r in 1 2 3; do
    for t in plain tls; do
      "$build/bench/godwit-tcp-baseline" --copy "$dir/source.img" --to "$dir/copy.img" --streams 4 \
        $([ $t = tls ] && echo --tls) |
        sed 's/.*"mb_per_s":\([^,]*\),"cpu_s_per_gib":\([^}]*\).*/\1 \2/' >>"$dir/floor-$t"
    done
  done
  rm -f "$dir/copy.img"
  fp=$(awk '{print $1}' "$dir/floor-plain" | median) ft=$(awk '{print $1}' "$dir/floor-tls" | median)
  cp_=$(awk '{print $2}' "$dir/floor-plain" | median | field median)
  ct=$(awk '{print $2}' "$dir/floor-tls" | median | field median)
  tls_floor_cpu=$(awk -v a="$ct" -v b="$cp_" 'BEGIN {printf "%.2f", a - b}')
  echo "{\"baseline\":\"tls_floor\",\"streams\":4,\"size_mb\":$size_mb,\"cipher\":\"$(
    "$build/bench/godwit-tcp-baseline" --copy "$dir/source.img" --to "$dir/copy.img" --tls | field cipher)\",\"plain_mb_per_s\":$fp,\"tls_mb_per_s\":$ft,\"ratio\":$(
    awk -v a="$(echo "$ft" | field median)" -v b="$(echo "$fp" | field median)" 'BEGIN {printf "%.2f", a / b}'),\"plain_cpu_s_per_gib\":$cp_,\"tls_cpu_s_per_gib\":$ct,\"cipher_cpu_s_per_gib\":$tls_floor_cpu}"
  rm -f "$dir/copy.img"
fi

# cpu_per_gib PID: user+system CPU seconds of PID per GiB of image
cpu_per_gib() { awk -v t="$ticks" -v mb="$size_mb" '{printf "%.2f", ($14 + $15) / t / (mb / 1024)}' /proc/$1/stat; }

# one_run W C TLS: prints "MB/s RSS_KB SEEDER_CPU LEECHER_CPU downtime_us dirty"
one_run() {
  local sp cp seeder leecher rss ctl
  sp=$(port); cp=$(port)
  # each run is a new migration of the same image: no seeder state from the last one
  rm -f "$dir/dest.img" "$dir/dest.img.godwit-state" "$dir/source.img.godwit-seeder"
  "$build/seeder/godwit-seeder" --image "$dir/source.img" --listen "127.0.0.1:$sp" \
    --chunk-size "$chunk" --nbd-socket "$dir/s.sock" $(tls_flags seeder "$3") 2>"$dir/seeder.log" &
  seeder=$!; pids+=($seeder)
  for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
  local target="127.0.0.1:$sp"
  if [ -n "${RTT_MS:-}" ]; then   # set (even to 0): through the emulator
    local lp; lp=$(port)
    "$build/bench/godwit-linkem" --listen "127.0.0.1:$lp" --target "$target" --rtt-ms "$RTT_MS" 2>/dev/null &
    pids+=($!); linkem=$!
    target="127.0.0.1:$lp"
  fi
  local start=$(date +%s%N)
  "$build/leecher/godwit-leecher" --seeder "$target" --image "$dir/dest.img" \
    $([ "$1" = auto ] || echo "--workers $1") --channels "$2" ${LEECHER_ARGS:-} --control "127.0.0.1:$cp" --sync-interval 600000 --skip-final-sync \
    $(tls_flags leecher "$3") 2>"$dir/leecher.log" &
  leecher=$!; pids+=($leecher)
  for _ in $(seq 1000); do (exec 3<>/dev/tcp/127.0.0.1/$cp) 2>/dev/null && break; sleep 0.005; done
  ctl=("$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" $(tls_flags leecher "$3"))
  "${ctl[@]}" --timeout 600 wait-local >"$dir/ctl.out"
  local end=$(date +%s%N)
  rss=$(awk '/VmHWM/ {print $2}' /proc/$leecher/status)
  local cpu="$(cpu_per_gib $seeder) $(cpu_per_gib $leecher)"
  local out="$(awk -v mb="$size_mb" -v ns=$((end - start)) 'BEGIN {printf "%.1f", mb * 1.048576 / (ns / 1e9)}') $rss $cpu"
  local writes=$(((size_mb << 20) / chunk * ${DIRTY_PCT:-1} / 100))
  [ "$writes" -eq 0 ] || "$build/bench/godwit-writer" --socket "$dir/s.sock" --count "$writes" \
    --block 4K --hot-percent 0 --rate-mbps 0 >/dev/null
  local fin=$("${ctl[@]}" finalize)
  out="$out $(echo "$fin" | field downtime_us) $(echo "$fin" | field dirty_chunks)"
  "${ctl[@]}" wait-complete >/dev/null
  cmp -s "$dir/source.img" "$dir/dest.img" || { echo "pull-bench: images differ" >&2; exit 1; }
  kill $leecher $seeder ${linkem:-}; wait $leecher $seeder ${linkem:-} 2>/dev/null || true
  linkem=
  echo "$out"
}

# column N of FILE as median/min/max JSON
column() { awk -v n="$1" '{print $n}' "$2" | median; }

# cell_line W C FILE TLS [PLAIN_MBS]: the JSON line of one cell's runs in FILE
cell_line() {
  local mbs rss wj extra=""
  mbs=$(column 1 "$3")
  rss=$(awk '{print $2}' "$3" | sort -n | tail -1)
  ratio() { [ -n "$1" ] || { echo null; return; }; awk -v b="$1" -v r="$(echo "$mbs" | field median)" 'BEGIN {printf "%.2f", r / b}'; }
  [ "$1" = auto ] && wj='"auto"' || wj=$1
  [ -z "${5:-}" ] || extra=",\"ratio_to_plaintext\":$(ratio "$5")"
  [ -z "${6:-}" ] || [ -z "$tls_floor_cpu" ] ||
    extra="$extra,\"cipher_bound_ratio\":$(awk -v p="$6" -v c="$tls_floor_cpu" 'BEGIN {printf "%.2f", p / (p + c)}')"
  echo "{\"rtt_ms\":${RTT_MS:-0},\"workers\":$wj,\"channels\":$2,\"size_mb\":$size_mb,\"runs\":$runs,\"tls\":$([ "$4" = 1 ] && echo true || echo false),\"mb_per_s\":$mbs,\"ratio_to_tcp\":$(ratio "$baseline"),\"ratio_to_copy_floor\":$(ratio "$copy_floor")$extra,\"chunk_size\":$chunk,\"leecher_peak_rss_kb\":$rss,\"seeder_cpu_s_per_gib\":$(column 3 "$3"),\"leecher_cpu_s_per_gib\":$(column 4 "$3"),\"dirty_pct\":${DIRTY_PCT:-1},\"downtime_us\":$(column 5 "$3"),\"dirty_chunks\":$(column 6 "$3"),\"host_steal_ticks\":$(($(steal) - steal_before))}"
}

for cell in $grid; do
  w=${cell%x*}; c=${cell#*x}
  : >"$dir/plain"; : >"$dir/tls"
  steal_before=$(steal)
  for r in $(seq "$runs"); do
    case $tls_mode in
    0) one_run "$w" "$c" 0 >>"$dir/plain" ;;
    1) one_run "$w" "$c" 1 >>"$dir/tls" ;;
    compare) # alternate which goes first, so neither always gets the warmer machine
      if [ $((r % 2)) = 1 ]; then one_run "$w" "$c" 0 >>"$dir/plain"; one_run "$w" "$c" 1 >>"$dir/tls"
      else one_run "$w" "$c" 1 >>"$dir/tls"; one_run "$w" "$c" 0 >>"$dir/plain"; fi ;;
    esac
  done
  plain_mbs="" plain_cpu=""
  if [ "$tls_mode" != 1 ]; then
    cell_line "$w" "$c" "$dir/plain" 0
    plain_mbs=$(column 1 "$dir/plain" | field median)
    plain_cpu=$(awk -v s="$(column 3 "$dir/plain" | field median)" -v l="$(column 4 "$dir/plain" | field median)" 'BEGIN {print s + l}')
  fi
  [ "$tls_mode" = 0 ] || cell_line "$w" "$c" "$dir/tls" 1 "$plain_mbs" "$plain_cpu"
done
