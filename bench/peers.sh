#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# godwit against what a user would run instead, in the same run, taking
# turns run by run: a full godwit migration (seeder + leecher at default
# flags and `godwit-ctl switchover` started with the leecher: wait for
# pre-copy, Finalize, wait for COMPLETE; then cmp), `qemu-img convert`
# and `nbdcopy` reading `nbdkit file` over NBD/TCP on loopback into a local
# file, the copy floor (`godwit-tcp-baseline --copy`, 4 streams; dense only) and QEMU's
# own live migration of a file-backed guest RAM of the same size (KVM only).
#   bench/peers.sh BUILD WORKLOAD SIZE_MB RUNS
# WORKLOAD:
#   dense     SIZE_MB of random data, page-cached
#   sparse    SIZE_MB with 10% data in 1 MiB extents, the rest holes; the
#             destination's allocation (st_blocks) is reported against the source's
#   writer    dense, with godwit-writer writing to the seeder's export during
#             pre-copy (WRITER_MBPS, default 20; stopped just before Finalize), and
#             QEMU's guest dirtying SIZE_MB/64 MiB; qemu-img and nbdcopy do not
#             take part (a copy taken under writes is not a consistent image)
#   slowlink  godwit alone over godwit-linkem at SLOW_MBPS (default 6) MB/s: after
#             SLOW_FINALIZE_S (default 3) s of pre-copy, 2 blocks written, then
#             Finalize (leecher --skip-final-sync --sync-interval 600000, so the
#             freeze carries those 2 dirty chunks): downtime and the Finalize call;
#             SLOW_VERIFY_RUNS=N: only the first N runs wait for the post-copy at link
#             speed and compare the images (default: all)
# One JSON line per tool: seconds to a complete destination, MB/s, CPU s/GiB
# (all of the tool's processes: seeder + leecher, qemu-img + nbdkit, nbdcopy +
# nbdkit, both QEMUs during the migration), destination allocation, and the
# tool's own figures (downtime, Finalize call, QEMU's total-time). A tool that
# cannot run here prints one line with "skipped" and the reason.
# QEMU_DEFAULTS=1 also measures QEMU at its default max-bandwidth (128 MiB/s).
# TOOLS="godwit qemu-img" runs only those of the workload's tools (e.g. the
# sparse workload without QEMU's much longer migration).
# godwit's line also gives its steps (ms, medians): start to the leecher's
# ready event (ready_ms), from there until every chunk is local (pull_ms),
# the Finalize call, from its end to COMPLETE (complete_ms). The writer and
# slowlink workloads run the steps as separate godwit-ctl commands (the
# writer stops, or 2 blocks are written, between them).
set -euo pipefail
build=${1:-build-release}
workload=${2:-dense}
size_mb=${3:-1024}
runs=${4:-3}
writer_mbps=${WRITER_MBPS:-20}
slow_mbps=${SLOW_MBPS:-6}
slow_finalize_s=${SLOW_FINALIZE_S:-3}
ticks=$(getconf CLK_TCK)
for b in seeder/godwit-seeder leecher/godwit-leecher ctl/godwit-ctl bench/godwit-writer \
  bench/godwit-tcp-baseline bench/godwit-linkem bench/godwit-qmp-migrate; do
  [ -x "$build/$b" ] || { echo "peers: build $build/$b first (cmake --build $build)" >&2; exit 1; }
done
for tool in nbdcopy nbdkit qemu-img; do
  command -v $tool >/dev/null || { echo "peers: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

dir=$(mktemp -d)
shm=$(mktemp -d /dev/shm/godwit-peers.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir" "$shm"; }
trap cleanup EXIT

# ports below the ephemeral range (32768+), so no outgoing connection holds one
port() { local p; for p in $(shuf -i 20000-32000 -n 20); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
wait_port() { for _ in $(seq 1000); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.005; done; }
wait_file() { for _ in $(seq 2000); do [ -e "$1" ] && return; sleep 0.005; done; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" | tr -d '"'; }
now() { date +%s%N; }
# the leecher's ready event (a text log line "TS godwit-leecher: ready ...") in ns
ready_ns() { date -d "$(sed -n 's/^\([^ ]*\) godwit-leecher: ready.*/\1/p' "$1" | head -1)" +%s%N; }
# the JSON number FIELD of a godwit-ctl reply, in ms (x 1000 for a *_s field)
ms_of() { awk -v v="$(field "$2" <<<"$1")" -v k="$3" 'BEGIN {printf "%.1f", v * k}'; }
seconds() { awk -v ns=$(($2 - $1)) 'BEGIN {printf "%.3f", ns / 1e9}'; }
ms_between() { awk -v ns=$(($2 - $1)) 'BEGIN {printf "%.1f", ns / 1e6}'; }
cpu_of() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
alloc_kib() { echo $(($(stat -c %b "$1") / 2)); }
sum() { awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.3f", s}' <<<"$*"; }
stats() { grep -v '^-$' | sort -g | awk '{a[NR]=$1} END {printf "{\"median\":%.10g,\"min\":%.10g,\"max\":%.10g}", a[int((NR+1)/2)], a[1], a[NR]}'; }

src=$dir/source.img
dest=$dir/dest.img
make_image() {
  if [ "$workload" = sparse ]; then
    truncate -s "${size_mb}M" "$src"
    # 10% of the MiBs, at random places, 1 MiB each
    for slot in $(shuf -i 0-$((size_mb - 1)) -n $((size_mb / 10))); do
      dd if=/dev/urandom of="$src" bs=1M count=1 seek="$slot" conv=notrunc status=none
    done
  else
    head -c $((size_mb << 20)) /dev/urandom >"$src"
  fi
  sync "$src"
  cat "$src" >/dev/null
}
make_image
source_alloc=$(alloc_kib "$src")

# --- godwit: seeder + leecher, a full migration --------------------------
# prints "SECONDS CPU ALLOC_KIB DOWNTIME_MS DIRTY_CHUNKS FINALIZE_MS READY_MS PULL_MS COMPLETE_MS"
run_godwit() {
  local sp cp seeder leecher writer="" linkem="" target start end fin f0 f1 ready
  sp=$(port); cp=$(port)
  # each run is a new migration of the same image: no seeder state from the last one
  rm -f "$dest" "$dest.godwit-state" "$dir/s.sock" "$src.godwit-seeder"
  "$build/seeder/godwit-seeder" --image "$src" --listen "127.0.0.1:$sp" --nbd-socket "$dir/s.sock" \
    2>"$dir/seeder.log" &
  seeder=$!; pids+=($seeder)
  wait_file "$dir/s.sock"
  wait_port "$sp"
  target=127.0.0.1:$sp
  local leecher_args=()
  if [ "$workload" = slowlink ]; then
    local lp; lp=$(port)
    "$build/bench/godwit-linkem" --listen "127.0.0.1:$lp" --target "$target" --rate-mbps "$slow_mbps" --shared-rate 2>/dev/null &
    linkem=$!; pids+=($linkem)
    wait_port "$lp"
    target=127.0.0.1:$lp
    leecher_args=(--skip-final-sync --sync-interval 600000)
  fi
  if [ "$workload" = writer ]; then
    "$build/bench/godwit-writer" --socket "$dir/s.sock" --rate-mbps "$writer_mbps" >"$dir/writer.out" &
    writer=$!; pids+=($writer)
  fi
  start=$(now)
  "$build/leecher/godwit-leecher" --seeder "$target" --image "$dest" --control "127.0.0.1:$cp" \
    "${leecher_args[@]}" 2>"$dir/leecher.log" &
  leecher=$!; pids+=($leecher)
  if [ "$workload" = dense ] || [ "$workload" = sparse ]; then
    switchover_godwit
    return
  fi
  wait_port "$cp"
  ready=$(now)
  if [ "$workload" = slowlink ]; then
    sleep "$slow_finalize_s" # pre-copy in full swing
    "$build/bench/godwit-writer" --socket "$dir/s.sock" --count 2 --block 4K --hot-percent 0 \
      --rate-mbps 0 --seed "$RANDOM" >/dev/null
  else
    "$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" --timeout 300 wait-local >/dev/null
  fi
  if [ -n "$writer" ]; then kill -TERM "$writer"; wait "$writer" || true; fi
  f0=$(now)
  fin=$("$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" finalize)
  f1=$(now)
  # slowlink: only the first SLOW_VERIFY_RUNS runs wait for the post-copy at link speed
  local verify=true took=- complete_ms=-
  [ "$workload" != slowlink ] || [ "$run" -lt "${SLOW_VERIFY_RUNS:-$runs}" ] || verify=false
  if $verify; then
    "$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" --timeout 300 wait-complete >/dev/null
    end=$(now)
    took=$(seconds "$start" "$end")
    complete_ms=$(ms_between "$f1" "$end")
  fi
  local cpu=-
  ! $verify || cpu=$(sum "$(cpu_of $seeder)" "$(cpu_of $leecher)")
  kill $leecher $seeder $linkem 2>/dev/null; wait $leecher $seeder $linkem 2>/dev/null || true
  ! $verify || cmp -s "$src" "$dest" || { echo "peers: godwit's destination differs from the source" >&2; exit 1; }
  echo "$took $cpu $($verify && alloc_kib "$dest" || echo -)" \
    "$(awk -v us="$(echo "$fin" | field downtime_us)" 'BEGIN {printf "%.3f", us / 1000}')" \
    "$(echo "$fin" | field dirty_chunks)" "$(ms_between "$f0" "$f1")" "$(ms_between "$start" "$ready")" \
    "$(ms_between "$ready" "$f0")" "$complete_ms"
}

# The rest of run_godwit for a migration without a writer: what a user types,
# one `godwit-ctl switchover` for the whole hand-over, started together with
# the leecher (it asks again until the leecher answers). Its --json reply
# times the steps from its own start (end - complete_s here); ready_ms comes
# from the leecher's log.
switchover_godwit() {
  local sw
  sw=$("$build/ctl/godwit-ctl" --control "127.0.0.1:$cp" --timeout 300 switchover --json)
  end=$(now)
  local cpu; cpu=$(sum "$(cpu_of $seeder)" "$(cpu_of $leecher)")
  ready=$(ready_ns "$dir/leecher.log")
  kill $leecher $seeder; wait $leecher $seeder 2>/dev/null || true
  cmp -s "$src" "$dest" || { echo "peers: godwit's destination differs from the source" >&2; exit 1; }
  # ms from the leecher's start to each step's end, on this script's clock
  local at_local at_finalized at_complete
  at_complete=$(ms_between "$start" "$end")
  at_local=$(awk -v e="$at_complete" -v c="$(ms_of "$sw" complete_s 1000)" -v l="$(ms_of "$sw" local_s 1000)" 'BEGIN {printf "%.1f", e - c + l}')
  at_finalized=$(awk -v e="$at_complete" -v c="$(ms_of "$sw" complete_s 1000)" -v f="$(ms_of "$sw" finalized_s 1000)" 'BEGIN {printf "%.1f", e - c + f}')
  echo "$(seconds "$start" "$end") $cpu $(alloc_kib "$dest")" \
    "$(ms_of "$sw" downtime_us 0.001) $(echo "$sw" | field dirty_chunks) $(ms_of "$sw" finalize_ms 1)" \
    "$(ms_between "$start" "$ready")" \
    "$(awk -v a="$at_local" -v r="$(ms_between "$start" "$ready")" 'BEGIN {printf "%.1f", a - r}')" \
    "$(awk -v a="$at_complete" -v b="$at_finalized" 'BEGIN {printf "%.1f", a - b}')"
}

# --- qemu-img convert / nbdcopy from nbdkit file over TCP -----------------
# start_nbdkit: a fresh `nbdkit file` on a loopback port; sets nbd_port, nbd_pid
start_nbdkit() {
  nbd_port=$(port)
  rm -f "$dir/nbdkit.pid"
  nbdkit -f -i 127.0.0.1 -p "$nbd_port" -P "$dir/nbdkit.pid" file "$src" 2>"$dir/nbdkit.log" &
  nbd_pid=$!; pids+=($nbd_pid)
  wait_file "$dir/nbdkit.pid"
}

# run_nbd_client qemu-img|nbdcopy: prints "SECONDS CPU ALLOC_KIB"
run_nbd_client() {
  local times cmd
  start_nbdkit
  rm -f "$dest"
  case $1 in
    qemu-img) cmd=(qemu-img convert -f raw -O raw "nbd://127.0.0.1:$nbd_port" "$dest") ;;
    nbdcopy) cmd=(nbdcopy "nbd://127.0.0.1:$nbd_port" "$dest") ;;
  esac
  times=$( { TIMEFORMAT='%R %U %S'; time "${cmd[@]}" >/dev/null 2>"$dir/client.log"; } 2>&1 ) ||
    { echo "peers: $1 failed: $(cat "$dir/client.log")" >&2; exit 1; }
  local cpu; cpu=$(sum "$(cut -d' ' -f2,3 <<<"$times")" "$(cpu_of $nbd_pid)")
  kill $nbd_pid; wait $nbd_pid 2>/dev/null || true
  cmp -s "$src" "$dest" || { echo "peers: $1's destination differs from the source" >&2; exit 1; }
  echo "$(cut -d' ' -f1 <<<"$times") $cpu $(alloc_kib "$dest")"
}

# --- the copy floor: bare pread/send/recv/pwrite, 4 streams --------------
run_copy_floor() {
  local times
  rm -f "$dest"
  times=$( { TIMEFORMAT='%R %U %S'; time "$build/bench/godwit-tcp-baseline" --copy "$src" --to "$dest" --streams 4 >/dev/null; } 2>&1 )
  cmp -s "$src" "$dest" || { echo "peers: the copy floor's destination differs" >&2; exit 1; }
  echo "$(cut -d' ' -f1 <<<"$times") $(sum "$(cut -d' ' -f2,3 <<<"$times")") $(alloc_kib "$dest")"
}

# --- QEMU live migration of a file-backed guest RAM ----------------------
guest=$build/bench/godwit-qemu-guest.elf
qemu_skip=""
if ! command -v qemu-system-x86_64 >/dev/null; then
  qemu_skip="qemu-system-x86_64 is missing (scripts/install-bench-deps.sh)"
elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  qemu_skip="/dev/kvm is not usable here"
elif [ ! -f "$guest" ]; then
  qemu_skip="no guest kernel $guest (x86 hosts only)"
elif [ "$workload" = slowlink ]; then
  qemu_skip="godwit alone on the slow link"
fi
hot_mib=0
[ "$workload" = writer ] && hot_mib=$((size_mb / 64))
qemu_ram=$dir/qemu-source.ram
[ -n "$qemu_skip" ] || cp --sparse=always "$src" "$qemu_ram"

# qemu_vm RAMFILE QMP_SOCKET ARGS...: one QEMU, RAM from RAMFILE (share=on).
# The host CPU without IA32_ARCH_CAPABILITIES: under nested KVM on AMD hosts
# QEMU 7.2 cannot set that MSR and aborts at start ("failed to set MSR
# 0x10a"); the guest never reads it.
qemu_vm() {
  local ram=$1 qmp=$2; shift 2
  qemu-system-x86_64 -accel kvm -cpu host,-arch-capabilities -machine q35,memory-backend=ram -m "${size_mb}M" \
    -object "memory-backend-file,id=ram,size=${size_mb}M,mem-path=$ram,share=on" \
    -nodefaults -no-user-config -display none -kernel "$guest" \
    -qmp "unix:$qmp,server=on,wait=off" "$@" 2>>"$dir/qemu.log" &
  qemu_pid=$!; pids+=($qemu_pid)
}

# run_qemu [MAX_BANDWIDTH]: prints "SECONDS CPU ALLOC_KIB DOWNTIME_MS TOTAL_TIME_MS TRANSFERRED_MB DIRTY_PAGES_RATE"
# The destination's RAM is a file on /dev/shm (tmpfs): the memory a
# destination VM gets, and comparable with the source's afterwards.
run_qemu() {
  local qp s d out cpu0 cpu1 bw=${1:-100G}
  qp=$(port)
  rm -f "$shm/dest.ram" "$dir/console" "$dir/qs.sock" "$dir/qd.sock"
  truncate -s "${size_mb}M" "$shm/dest.ram"
  qemu_vm "$qemu_ram" "$dir/qs.sock" -append "$hot_mib" \
    -chardev "file,id=console,path=$dir/console" -device isa-debugcon,iobase=0x402,chardev=console
  s=$qemu_pid
  qemu_vm "$shm/dest.ram" "$dir/qd.sock" -S -incoming "tcp:127.0.0.1:$qp"
  d=$qemu_pid
  for _ in $(seq 1200); do grep -qs "godwit-qemu-guest ready" "$dir/console" && break; sleep 0.05; done
  grep -qs "godwit-qemu-guest ready" "$dir/console" || { echo "peers: QEMU's guest did not start" >&2; exit 1; }
  cpu0=$(sum "$(cpu_of $s)" "$(cpu_of $d)")
  out=$("$build/bench/godwit-qmp-migrate" --qmp "$dir/qs.sock" --dest-qmp "$dir/qd.sock" \
    --uri "tcp:127.0.0.1:$qp" $([ "$bw" = default ] || echo "--max-bandwidth $bw") --timeout 600)
  cpu1=$(sum "$(cpu_of $s)" "$(cpu_of $d)")
  kill $s $d; wait $s $d 2>/dev/null || true
  # The first MiB holds the BIOS's data and each QEMU's own kvmclock page.
  cmp -s -i 1M "$qemu_ram" "$shm/dest.ram" || { echo "peers: QEMU's destination RAM differs" >&2; exit 1; }
  echo "$(echo "$out" | field wall_ms | awk '{printf "%.3f", $1 / 1000}') $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.3f", b - a}')" \
    "$(alloc_kib "$shm/dest.ram") $(echo "$out" | field downtime_ms) $(echo "$out" | field total_time_ms)" \
    "$(echo "$out" | field transferred_bytes | awk '{printf "%.1f", $1 / 1048576}') $(echo "$out" | field dirty_pages_rate)"
  rm -f "$shm/dest.ram"
}

case $workload in
  dense) tools=(godwit qemu-img nbdcopy copy-floor) ;;
  sparse) tools=(godwit qemu-img nbdcopy) ;; # the copy floor moves every byte: a dense figure
  writer) tools=(godwit) ;;
  slowlink) tools=(godwit) ;;
  *) echo "peers: unknown workload $workload (dense, sparse, writer, slowlink)" >&2; exit 2 ;;
esac
if [ -z "$qemu_skip" ]; then
  tools+=(qemu)
  [ "${QEMU_DEFAULTS:-0}" = 1 ] && tools+=(qemu-default-bandwidth)
fi
if [ -n "${TOOLS:-}" ]; then
  chosen=()
  for tool in "${tools[@]}"; do
    [[ " $TOOLS " == *" $tool "* ]] && chosen+=("$tool")
  done
  for tool in $TOOLS; do
    [[ " ${tools[*]} " == *" $tool "* ]] || { echo "peers: TOOLS names $tool, not a tool of the $workload workload here (${tools[*]})" >&2; exit 2; }
  done
  tools=("${chosen[@]}")
  qemu_skip="" # not asked for: no "skipped" line
fi

for tool in "${tools[@]}"; do : >"$dir/results.$tool"; done
# Round robin, starting one tool later each round: a burst of other load
# on this machine is spread over every tool, not charged to one.
for run in $(seq 0 $((runs - 1))); do
  for j in "${!tools[@]}"; do
    tool=${tools[$(((run + j) % ${#tools[@]}))]}
    # The previous run's destination is gone and flushed, outside the timing:
    # the kernel's writeback of it must not land on this run.
    rm -f "$dest" "$dest.godwit-state"
    sync
    case $tool in
      godwit) run_godwit ;;
      qemu-img | nbdcopy) run_nbd_client "$tool" ;;
      copy-floor) run_copy_floor ;;
      qemu) run_qemu 100G ;;
      qemu-default-bandwidth) run_qemu default ;;
    esac >>"$dir/results.$tool"
  done
done

# col TOOL N: column N of TOOL's results as median/min/max JSON
col() { awk -v n="$2" '{print $n}' "$dir/results.$1" | stats; }
mbps() { awk -v mb="$size_mb" '$1 == "-" {print "-"; next} {printf "%.1f\n", mb * 1.048576 / $1}' "$dir/results.$1" | stats; }
for tool in "${tools[@]}"; do
  extra=""
  case $tool in
    godwit) extra=",\"downtime_ms\":$(col godwit 4),\"dirty_chunks\":$(col godwit 5),\"finalize_call_ms\":$(col godwit 6),\"ready_ms\":$(col godwit 7),\"pull_ms\":$(col godwit 8),\"complete_ms\":$(col godwit 9)" ;;
    qemu | qemu-default-bandwidth) extra=",\"downtime_ms\":$(col "$tool" 4),\"qemu_total_time_ms\":$(col "$tool" 5),\"transferred_mb\":$(col "$tool" 6),\"dirty_pages_rate\":$(col "$tool" 7),\"max_bandwidth\":\"$([ "$tool" = qemu ] && echo 100G || echo default)\",\"hot_mib\":$hot_mib" ;;
  esac
  [ "$workload" = writer ] && [ "$tool" = godwit ] && extra="$extra,\"writer_mbps\":$writer_mbps"
  [ "$workload" = slowlink ] && extra="$extra,\"link_mbps\":$slow_mbps,\"finalize_after_s\":$slow_finalize_s"
  echo "{\"workload\":\"$workload\",\"tool\":\"$tool\",\"size_mb\":$size_mb,\"runs\":$runs,\"seconds\":$(col "$tool" 1),\"mb_per_s\":$(mbps "$tool"),\"cpu_s_per_gib\":$(awk -v mb="$size_mb" '$2 == "-" {print "-"; next} {printf "%.3f\n", $2 / (mb / 1024)}' "$dir/results.$tool" | stats),\"dest_alloc_kib\":$(col "$tool" 3),\"source_alloc_kib\":$source_alloc$extra}"
done
if [ -n "$qemu_skip" ]; then
  echo "{\"workload\":\"$workload\",\"tool\":\"qemu\",\"size_mb\":$size_mb,\"skipped\":\"$qemu_skip\"}"
fi
if [ "$workload" = writer ]; then
  for tool in qemu-img nbdcopy; do
    echo "{\"workload\":\"writer\",\"tool\":\"$tool\",\"size_mb\":$size_mb,\"skipped\":\"not a live migration: a copy taken under writes is not a consistent image\"}"
  done
fi
