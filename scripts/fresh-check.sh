#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fresh-machine check: runs the README's test command (scripts/test.sh)
# in a new Debian 12 minbase chroot holding only a clone of this repository's
# committed HEAD, so a package missing from scripts/install-deps.sh fails
# here instead of on a new machine. A developer check, not a ctest test.
#   scripts/fresh-check.sh                          # the whole test.sh
#   GODWIT_TEST_CONFIGS=plain scripts/fresh-check.sh
#   scripts/fresh-check.sh --rebuild                # debootstrap the base anew
#   scripts/fresh-check.sh --reuse -- ctest --test-dir build -R NAME
#                         # debugging: another command in the last run's root
# The debootstrapped base is cached in $GODWIT_FRESH_CACHE (default
# /var/cache/godwit-fresh/base); each run copies it, so every run starts
# fresh. Runs as root (debootstrap, mounts, pivot_root), in its own mount and PID
# namespace: nothing stays mounted or running after it. Exit 0 pass, 1 fail,
# 2 bad usage.
set -euo pipefail
# All in one block, read whole before it runs: editing this file during a
# (long) run cannot change what the run does.
{

cache=${GODWIT_FRESH_CACHE:-/var/cache/godwit-fresh}
suite=bookworm
command=(scripts/test.sh)
rebuild=0
reuse=0
while [ $# -gt 0 ]; do
  case $1 in
    --rebuild) rebuild=1 ;;
    --reuse) reuse=1 ;;
    --) shift; [ $# -gt 0 ] && command=("$@"); break ;;
    -h | --help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "fresh-check: unknown argument '$1' (--rebuild, --reuse, -- COMMAND or --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
base=$cache/base
root=$cache/run
log=$cache/last.log
started=$(date +%s)

say() { echo "fresh-check: $*" >&2; }

# The host's Debian mirror for $suite (deb822 or one-line sources), or Debian's own.
host_mirror() {
  local uri
  uri=$(awk -v suite="$suite" '
    /^URIs:/ { uris = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uris }
    /^$/ { uris = "" } END { print found }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' \
    /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local mirror
  mirror=$(host_mirror)
  say "debootstrap --variant=minbase $suite from $mirror into $base"
  rm -rf "$base" "$base.tmp"
  mkdir -p "$cache"
  debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; say "debootstrap failed ($cache/debootstrap.log)"; exit 1; }
  mv "$base.tmp" "$base"
}

# The new root: a copy of the base, the clone, and how the host reaches the
# network (nothing else of the host's): its apt sources and Acquire settings
# (the same mirror, reached the same way), DNS, and its local CA certificates
# (trusted by the ca-certificates package once install-deps installs it).
make_root() {
  rm -rf "$root"
  cp -a "$base" "$root"
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
  done
  for f in /etc/apt/apt.conf.d/*; do
    grep -q '^Acquire::' "$f" 2>/dev/null && cp "$f" "$root$f"
  done
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  git clone -q --no-hardlinks "$repo" "$root/root/godwit"
  git -C "$root/root/godwit" checkout -q --detach "$head"
}

# Runs inside the new mount and PID namespaces: mounts what a machine has,
# then the command in the chroot with a clean environment.
run_inside() {
  set -euo pipefail
  mount --make-rprivate /
  # The root a mount point of its own, as a machine's is (podman remounts /).
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  # The cgroup hierarchies as the host has them mounted (a machine's init
  # mounts them; podman needs them).
  if mountpoint -q /sys/fs/cgroup; then
    mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
  fi
  mount -t tmpfs -o mode=755 dev "$root/dev"
  local node
  for node in null zero full random urandom tty fuse kvm net/tun; do
    [ -e "/dev/$node" ] || continue
    mkdir -p "$(dirname "$root/dev/$node")"
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  # pivot_root, not chroot: the new root must be the mount namespace's own
  # root, or a process that joins a namespace (podman exec) lands on the host's.
  mkdir -p "$root/.host"
  cd "$root"
  pivot_root . .host
  cd /
  umount -l /.host
  rmdir /.host
  /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${passed[@]}" \
    bash -c 'cd /root/godwit && "$@"' bash "${command[@]}"
}

# What of the host's environment reaches the command: the test selection,
# and the proxy and CA-bundle settings a machine here has.
passed=()
for name in GODWIT_TEST_CONFIGS http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
  NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE GIT_SSL_CAINFO; do
  [ -n "${!name:-}" ] && passed+=("$name=${!name}")
done

if [ "$reuse" -eq 0 ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes in $repo are not checked (only HEAD $head is)"
fi
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || { say "another fresh-check is running (it holds $cache/lock)"; exit 1; }
if [ "$rebuild" -eq 1 ] || [ ! -x "$base/bin/bash" ]; then
  make_base
fi
if [ "$reuse" -eq 0 ] || [ ! -d "$root/root/godwit" ]; then
  make_root
else
  head=$(git -C "$root/root/godwit" rev-parse HEAD) # what the reused root holds
fi
say "running ${command[*]} at $head in $root (log: $log)"
export root suite
export -f run_inside
status=0
unshare --mount --pid --fork --kill-child bash -c "$(declare -p command passed); run_inside" \
  >"$log" 2>&1 || status=$?
took=$(($(date +%s) - started))
# A test skipped here but not on a developer's machine usually means a
# package install-deps.sh leaves out: say which ones were.
skipped=$({ grep -o 'Test *#[0-9]*: [^ ]* \.*\*\*\*Skipped' "$log" || true; } | awk '{print $3}' | sort -u |
  tr '\n' ' ')
[ -z "$skipped" ] || say "skipped on the fresh machine: $skipped(see $log)"
if [ "$status" -eq 0 ]; then
  tail -3 "$log"
  say "PASS in ${took}s: ${command[*]} at $head on a fresh Debian $suite"
else
  tail -40 "$log"
  say "FAIL (exit $status) in ${took}s: ${command[*]} at $head on a fresh Debian $suite; log: $log"
  exit 1
fi
exit 0
}
