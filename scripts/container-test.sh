#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The container test (ctest test-ship-container, the "container"
# configuration of scripts/test.sh): builds the real image from the
# Dockerfile with podman and migrates between real containers and Pods.
#   1. installs podman & co. from Debian (not in install-deps.sh: the image's
#      build stage runs that script and needs none of them);
#   2. applies the host settings this kind of sandbox needs, only where
#      needed, saying which (runc instead of crun on hybrid cgroups; default
#      ulimits no higher than the hard limits);
#   3. makes the debian:bookworm-slim base locally (debootstrap + podman
#      import: no registry is reachable), cached in podman's storage;
#   4. podman build --format docker of the Dockerfile as it is;
#   5. a seeder container with a writer and a leecher container on one podman
#      network migrate a live 256 MiB image; Finalize through godwit-ctl in
#      the leecher container; the destination equals the frozen source;
#      healthchecks; a broken config exits 2 with its sentence in the logs;
#   6. podman kube play of k8s/ (a generated copy with podman's workarounds,
#      see docs/deploy.md) migrates byte-exact.
# Exits 77 (skipped) where podman cannot run containers; any other failure
# is a failure. GODWIT_CONTAINER_COLD=1 first removes the cached images
# (the cold path: base image and every build layer made again).
#   scripts/container-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source=$PWD
image=godwit:0.1.0
base=debian:bookworm-slim
size_mb=256
run_id=gwct$$

say() { echo "container-test: $*"; }
fail() {
  echo "container-test: FAILED: $*" >&2
  local c
  for c in "${containers[@]}" $(podman ps -a --format '{{.Names}}' --filter name=godwit- 2>/dev/null); do
    echo "--- podman logs --tail 5 $c" >&2
    podman logs --tail 5 "$c" >&2 2>&1 || true
  done
  exit 1
}
skip() { echo "container-test: SKIP: $*" >&2; exit 77; }
phase_start=$SECONDS
phase_done() { # phase_done NAME: prints how long the phase took
  say "$1 took $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}

containers=() pods=() volumes=() network=""
work=$(mktemp -d "${TMPDIR:-/var/tmp}/godwit-container-XXXXXX")
cleanup() {
  [ ${#pods[@]} -eq 0 ] || podman pod rm -f "${pods[@]}" >/dev/null 2>&1 || true
  [ ${#containers[@]} -eq 0 ] || podman rm -f -t 2 "${containers[@]}" >/dev/null 2>&1 || true
  [ ${#volumes[@]} -eq 0 ] || podman volume rm -f "${volumes[@]}" >/dev/null 2>&1 || true
  [ -z "$network" ] || podman network rm -f "$network" >/dev/null 2>&1 || true
  [ -n "${GODWIT_KEEP_TEST_DIRS:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# --- 1. podman from Debian ------------------------------------------------
# catatonit: podman's pause image for Pods; the dnsname plugin: container
# names and aliases resolve on a podman (CNI) network.
packages=(podman buildah runc slirp4netns fuse-overlayfs uidmap catatonit
  golang-github-containernetworking-plugin-dnsname debootstrap)
install_podman() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "podman and its helpers are installed"
    return
  fi
  [ "$(id -u)" -eq 0 ] || skip "not root: cannot install ${missing[*]} (rootful podman needs root)"
  command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
  say "installing ${missing[*]}"
  apt-get update -qq || skip "apt-get update failed: cannot install podman"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$work/apt.log" 2>&1 || skip "apt-get install ${missing[*]} failed: $(tail -3 "$work/apt.log")"
}
[ "$(id -u)" -eq 0 ] || skip "not root: this test runs rootful podman"
install_podman
phase_done "install"

# --- 2. host settings -----------------------------------------------------
host_conf=/etc/containers/containers.conf.d/50-godwit-host.conf
host_settings() {
  local containers_lines=() engine_lines=() hn hu runtime
  runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) ||
    skip "podman info fails: $(podman info 2>&1 | tail -1)"
  if [ "$runtime" = crun ] && [ -d /sys/fs/cgroup/unified ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
    command -v runc >/dev/null || skip "crun refuses hybrid cgroups and runc is not installed"
    say "host setting: runtime runc (crun refuses this host's hybrid cgroup v1 + v2 layout)"
    engine_lines+=('runtime = "runc"')
  fi
  # Rootful podman asks for 1048576 open files and processes; a sandbox
  # whose hard limits are lower refuses to start any container. Processes:
  # runc could not set more than 32768 on a host whose hard limit said 96363.
  hn=$(ulimit -Hn) hu=$(ulimit -Hu)
  local ulimits=()
  if [ "$hn" != unlimited ] && [ "$hn" -lt 1048576 ]; then ulimits+=("\"nofile=$hn:$hn\""); fi
  if [ "$hu" != unlimited ] && [ "$hu" -lt 1048576 ]; then
    [ "$hu" -le 32768 ] || hu=32768
    ulimits+=("\"nproc=$hu:$hu\"")
  fi
  if [ ${#ulimits[@]} -gt 0 ]; then
    say "host setting: default_ulimits [$(IFS=,; echo "${ulimits[*]}")] (podman's default 1048576 is above this host's hard limits)"
    containers_lines+=("default_ulimits = [$(IFS=,; echo "${ulimits[*]}")]")
  fi
  if [ ${#containers_lines[@]} -eq 0 ] && [ ${#engine_lines[@]} -eq 0 ]; then
    say "no host setting needed"
    return
  fi
  {
    echo "# Written by godwit's scripts/container-test.sh: what this host needs to run containers."
    if [ ${#containers_lines[@]} -gt 0 ]; then echo "[containers]"; printf '%s\n' "${containers_lines[@]}"; fi
    if [ ${#engine_lines[@]} -gt 0 ]; then echo "[engine]"; printf '%s\n' "${engine_lines[@]}"; fi
  } >"$work/host.conf"
  if cmp -s "$work/host.conf" "$host_conf"; then
    say "host settings already in $host_conf"
  else
    mkdir -p "$(dirname "$host_conf")"
    cp "$work/host.conf" "$host_conf"
    say "wrote $host_conf"
  fi
}
host_settings

if [ -n "${GODWIT_CONTAINER_COLD:-}" ]; then
  say "cold run: removing $image, $base and the build cache"
  podman rmi -f "$image" "$base" >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
fi

# --- 3. the base image ----------------------------------------------------
# debian_mirror: the Debian mirror of this host's apt sources.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk '/^URIs:/ {uri=$2} /^Suites:/ && / bookworm( |$)/ {print uri; exit}' "$f"
  done | awk 'NR == 1' | grep . && return
  grep -hE '^deb +[^ ]+ +bookworm( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '{print $2; exit}' | grep .
}
base_is_debian() { # the cached base has a shell and says it is Debian
  local root ok=1
  root=$(podman image mount "$base" 2>/dev/null) || return 1
  [ -x "$root/bin/sh" ] && [ -e "$root/etc/debian_version" ] && ok=0
  podman image unmount "$base" >/dev/null 2>&1 || true
  return $ok
}
make_base() {
  if podman image exists "$base"; then
    if base_is_debian; then
      say "base image $base: cached"
      return
    fi
    say "base image $base: the cached one has no /bin/sh or /etc/debian_version; making it again"
    podman rmi -f "$base" >/dev/null
  fi
  local mirror rootfs=$work/rootfs
  mirror=$(debian_mirror) || skip "no bookworm mirror in the apt sources to debootstrap $base from"
  say "base image $base: debootstrap --variant=minbase bookworm from the host's apt mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap failed: $(tail -3 "$work/debootstrap.log")"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' \
    --message "debootstrap minbase bookworm (godwit container-test)" - "$base" >/dev/null ||
    fail "podman import of the base image failed"
  rm -rf "$rootfs"
}
make_base
podman run --rm "$base" true >"$work/trial.log" 2>&1 ||
  skip "podman cannot run a container here: $(grep -v systemd "$work/trial.log" | tail -2)"
phase_done "base image"

# --- 4. the image ---------------------------------------------------------
say "podman build --format docker -t $image ."
podman build --format docker -t "$image" . >"$work/build.log" 2>&1 ||
  fail "podman build failed: $(tail -20 "$work/build.log")"
image_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
say "image $image: $image_mb MB"
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep 'dev/tcp' >/dev/null ||
  fail "the image lost its HEALTHCHECK (built without --format docker?)"
ids=$(podman run --rm "$image" id)
case $ids in "uid=10001(godwit) gid=10001(godwit) groups=10001(godwit)") ;;
  *) fail "the image's user is '$ids', the manifests say uid 10001, gid 10001" ;; esac
for bin in godwit-seeder godwit-leecher godwit-ctl godwit-writer nbdinfo; do
  podman run --rm "$image" sh -c "command -v $bin" >/dev/null || fail "the image has no $bin"
done
# Keep the build stage tagged (its layers are the next build's cache), then
# drop the untagged images that earlier builds left behind.
podman build --format docker --target build -t godwit-build:cache . >>"$work/build.log" 2>&1 ||
  fail "podman build --target build failed: $(tail -5 "$work/build.log")"
podman image prune -f >/dev/null
phase_done "build"

# --- 5. containers ----------------------------------------------------------
network=$run_id
podman network create "$network" >/dev/null
[ "$(podman network inspect --format '{{.DNSEnabled}}' "$network")" = true ] ||
  fail "network $network has no DNS (is the dnsname plugin installed?)"

# run NAME ARGS...: a detached, locked-down container (like the manifests:
# no capabilities, read-only root and no writable /tmp, uid 10001).
run() {
  local name=$run_id-$1
  shift
  containers+=("$name")
  podman run -d --name "$name" --read-only --read-only-tmpfs=false --cap-drop all \
    --security-opt no-new-privileges "$@" >>"$work/podman-run.log" 2>&1 ||
    fail "podman run $name failed: $(grep -v systemd "$work/podman-run.log" | tail -3)"
}
ctl() { # ctl CONTAINER ARGS...: godwit-ctl inside the leecher container
  local c=$1
  shift
  podman exec "$c" godwit-ctl --control 127.0.0.1:1338 "$@"
}
wait_ctl() { # wait_ctl CONTAINER: until the leecher answers Status
  local deadline=$((SECONDS + 30))
  until ctl "$1" status >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$1 never answered Status: $(podman logs --tail 5 "$1" 2>&1)"
    sleep 0.5
  done
}
# json_field KEY: KEY's value in the first line of stdin that has it. Reads
# all of stdin (with pipefail, a reader that stops early can fail the writer
# with SIGPIPE: grep -q, grep -m1 and head are not used on pipes here).
json_field() { awk -v k="\"$1\":" '!found && i = index($0, k) {
  v = substr($0, i + length(k)); sub(/[,}].*/, "", v); gsub(/"/, "", v); print v; found = 1 }'; }
running() { [ "$(podman inspect --format '{{.State.Running}}' "$1")" = true ]; }

mkdir -p "$work"/{src,srun,dst,drun,config}
head -c $((size_mb << 20)) /dev/urandom >"$work/src/image"
chown -R 10001:10001 "$work"/{src,srun,dst,drun}

seeder=$run_id-seeder leecher=$run_id-leecher writer=$run_id-writer
run seeder --network "$network" --network-alias godwit-seeder \
  -v "$work/src:/var/lib/godwit" -v "$work/srun:/run/godwit" "$image" \
  godwit-seeder --image /var/lib/godwit/image --listen 0.0.0.0:1337 \
  --nbd-socket /run/godwit/nbd.sock --log-format json
deadline=$((SECONDS + 30))
until [ -S "$work/srun/nbd.sock" ]; do
  [ $SECONDS -lt $deadline ] && running "$seeder" ||
    fail "the seeder did not start: $(podman logs "$seeder" 2>&1 | tail -3)"
  sleep 0.2
done
run writer --network none -v "$work/srun:/run/godwit" "$image" \
  godwit-writer --socket /run/godwit/nbd.sock --rate-mbps 5 --hot-percent 90 --retry
run leecher --network "$network" -e GODWIT_HEALTH_PORT=1338 \
  -v "$work/dst:/var/lib/godwit" -v "$work/drun:/run/godwit" "$image" \
  godwit-leecher --seeder godwit-seeder:1337 --image /var/lib/godwit/image \
  --nbd-socket /run/godwit/nbd.sock --control 127.0.0.1:1338 --log-format json
wait_ctl "$leecher"
ctl "$leecher" --timeout 120 wait-local >"$work/local.json" || fail "pre-copy did not catch up"
local_ns=$(date +%s%N)
# The first pass: from the leecher's started event (its own clock, the same
# as ours) to wait-local's return; container start-up not counted.
started_ts=$(podman logs "$leecher" 2>/dev/null | grep '"event":"started"' | json_field ts)
started_ns=$(date -d "$started_ts" +%s%N) || fail "no started event from the leecher"
sleep 2 # the writer re-dirties chunks: Finalize has some to transfer
running "$writer" || fail "the writer stopped before Finalize: $(podman logs "$writer" 2>&1 | tail -3)"

ctl "$leecher" finalize >"$work/finalize.json" || fail "Finalize failed"
downtime_us=$(json_field downtime_us <"$work/finalize.json")
dirty=$(json_field dirty_chunks <"$work/finalize.json")
ctl "$leecher" --timeout 120 wait-complete >"$work/complete.json" || fail "post-copy did not complete"
complete_ns=$(date +%s%N)

for c in "$seeder" "$leecher"; do
  podman healthcheck run "$c" >"$work/health.out" 2>&1 ||
    fail "podman healthcheck run $c: $(grep -v systemd "$work/health.out")"
done
say "podman healthcheck run: the seeder and the leecher are healthy"

# The source is frozen: the writer's writes fail and it backs off, it does
# not exit (a container restart loop under Kubernetes).
sleep 1
running "$writer" || fail "the writer exited after the freeze: $(podman logs "$writer" 2>&1 | tail -3)"
backoffs=$(podman logs "$writer" 2>&1 | grep -c "retrying in" || true)
podman stop -t 10 "$writer" "$leecher" "$seeder" >/dev/null 2>&1
cmp "$work/src/image" "$work/dst/image" || fail "the destination differs from the frozen source"

pulled=$(podman logs "$leecher" 2>/dev/null | grep '"event":"complete"' | json_field bytes_pulled)
say "containers: $size_mb MiB migrated byte-exact in $(awk -v ns=$((complete_ns - started_ns)) \
  'BEGIN { printf "%.2f", ns / 1e9 }') s (the leecher's started event to COMPLETE)"
awk -v mb=$size_mb -v ns=$((local_ns - started_ns)) -v b="${pulled:-0}" 'BEGIN {
  printf "container-test: first pass %.2f s, %.0f MB/s (started event to wait-local); %.1f MB pulled in all\n",
    ns / 1e9, mb * 1.048576 / (ns / 1e9), b / 1e6 }'
say "downtime ${downtime_us} us (Finalize, ${dirty} dirty chunks); the writer backed off $backoffs times after the freeze"

# A broken config: exit 2 and one sentence, in podman logs.
echo '{"image": 5}' >"$work/config/seeder.json"
chmod -R a+rX "$work/config"
run broken -v "$work/config:/etc/godwit:ro" "$image" godwit-seeder --config /etc/godwit/seeder.json
status=$(podman wait "$run_id-broken")
[ "$status" = 2 ] || fail "a seeder with a broken config exited $status, not 2"
podman logs "$run_id-broken" 2>&1 | grep '"image" must be a string' >/dev/null ||
  fail "the broken config's sentence is not in podman logs: $(podman logs "$run_id-broken" 2>&1)"
say "a seeder with a broken config exits 2: $(podman logs "$run_id-broken" 2>&1 | awk 'NR == 1')"
phase_done "containers"

# --- 6. podman kube play ------------------------------------------------------
# The generated copy works around two limits of podman (docs/deploy.md):
# emptyDirs become named volumes that every Pod of the same spec would share
# (so each Pod's get their own names), and Services are ignored (so the
# network gives the source Pod the Service's name as an alias).
generate() { # generate SIDE: configmap + k8s/SIDE.yaml with per-Pod volume names
  cat k8s/configmap.yaml
  echo "---"
  sed -E "s/name: (run|data|tmp)( |$)/name: $run_id-$1-\\1\\2/" "k8s/$1.yaml"
}
for side in source destination; do
  generate $side >"$work/$side.yaml"
  volumes+=("$run_id-$side-run" "$run_id-$side-data" "$run_id-$side-tmp")
  pods+=("godwit-$side-pod-0")
done
# The ConfigMap becomes a volume of its name, kept after the Pods: a stale
# one from an earlier run would hide a change to k8s/configmap.yaml.
podman volume rm -f godwit-config >/dev/null 2>&1 || true
volumes+=(godwit-config)
podman kube play --network "$network:alias=godwit-seeder" "$work/source.yaml" >"$work/play.log" 2>&1 ||
  fail "podman kube play source.yaml failed: $(grep -v systemd "$work/play.log" | tail -5)"
podman kube play --network "$network" "$work/destination.yaml" >>"$work/play.log" 2>&1 ||
  fail "podman kube play destination.yaml failed: $(grep -v systemd "$work/play.log" | tail -5)"
# pod_container SIDE NAME: the container that kube play made for NAME.
pod_container() {
  podman ps -a --filter "pod=$(podman pod ps -q --filter name="godwit-$1")" --format '{{.Names}}' |
    awk -v suffix="-$2" 'substr($0, length($0) - length(suffix) + 1) == suffix && !n++'
}
kleecher=$(pod_container destination leecher) kseeder=$(pod_container source seeder)
kwriter=$(pod_container source workload) kworkload=$(pod_container destination workload)
[ -n "$kleecher" ] && [ -n "$kseeder" ] && [ -n "$kwriter" ] && [ -n "$kworkload" ] ||
  fail "kube play did not make the four containers: $(podman ps -a --format '{{.Names}}' | tr '\n' ' ')"
kube_start=$SECONDS
wait_ctl "$kleecher"
ctl "$kleecher" --timeout 180 wait-local >/dev/null || fail "kube play: pre-copy did not catch up"
ctl "$kleecher" finalize >"$work/kube-finalize.json" || fail "kube play: Finalize failed"
ctl "$kleecher" --timeout 180 wait-complete >/dev/null || fail "kube play: post-copy did not complete"
kube_s=$((SECONDS - kube_start))
deadline=$((SECONDS + 20))
until podman logs "$kworkload" 2>&1 | grep export-size >/dev/null; do
  [ $SECONDS -lt $deadline ] ||
    fail "kube play: the destination workload's nbdinfo failed: $(podman logs "$kworkload" 2>&1 | tail -3)"
  sleep 0.5
done
sleep 1
running "$kwriter" && [ "$(podman inspect --format '{{.RestartCount}}' "$kwriter")" = 0 ] ||
  fail "kube play: the source writer restarted after the freeze: $(podman logs --tail 3 "$kwriter" 2>&1)"
podman pod stop -t 10 "$(podman pod ps -q --filter name=godwit-source)" \
  "$(podman pod ps -q --filter name=godwit-destination)" >/dev/null 2>&1
src_img=$(podman volume inspect --format '{{.Mountpoint}}' "$run_id-source-data")/image
dst_img=$(podman volume inspect --format '{{.Mountpoint}}' "$run_id-destination-data")/image
cmp "$src_img" "$dst_img" || fail "kube play: the destination differs from the frozen source"
say "kube play: $(( $(stat -c %s "$dst_img") >> 20 )) MiB migrated byte-exact in ${kube_s} s," \
  "downtime $(json_field downtime_us <"$work/kube-finalize.json") us; the destination workload read it" \
  "(nbdinfo, /tmp on an emptyDir); the source writer backed off, no restart"
phase_done "kube play"
say "ok"
