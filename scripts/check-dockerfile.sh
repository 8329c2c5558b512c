#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the Dockerfile without a Docker engine: base images pinned to
# debian:bookworm-slim, no :latest, apt used with --no-install-recommends
# and its lists removed, every COPY source present, a non-root USER and a
# HEALTHCHECK in the final stage, every apt package known to Debian, and
# every shared library the built binaries need provided by the runtime
# packages, what they depend on, or the base image's required packages.
#   scripts/check-dockerfile.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
file=${DOCKERFILE:-Dockerfile}
fail() { echo "check-dockerfile: $*" >&2; exit 1; }
command -v apt-cache >/dev/null || { echo "check-dockerfile: no apt-cache here" >&2; exit 77; }

grep -E '^FROM ' "$file" | while read -r _ image _; do
  [ "$image" = debian:bookworm-slim ] || fail "base image $image is not debian:bookworm-slim"
done
! grep -qE ':latest' "$file" || fail "an image uses the :latest tag"
while read -r line; do
  case $line in *"apt-get install"*)
    case $line in *--no-install-recommends*) ;; *) fail "apt-get install without --no-install-recommends" ;; esac ;;
  esac
done < <(tr -d '\\' <"$file" | tr '\n' ' ' | sed 's/RUN /\nRUN /g')
grep -q 'rm -rf /var/lib/apt/lists' "$file" || fail "apt lists are not removed in the runtime stage"

final=$(awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END {printf "%s", stage}' "$file")
echo "$final" | grep -qE '^USER +([1-9][0-9]*|[a-z]+)' || fail "the final stage has no USER"
echo "$final" | grep -E '^USER ' | grep -qvE 'USER +(0|root)$' || fail "the final stage runs as root"
echo "$final" | grep -q '^HEALTHCHECK' || fail "the final stage has no HEALTHCHECK"

grep -E '^COPY ' "$file" | grep -v -- '--from=' | while read -r _ src _; do
  [ -e "$src" ] || fail "COPY source $src does not exist"
done
grep -q 'scripts/install-deps.sh' "$file" || fail "the build stage does not use scripts/install-deps.sh"

runtime=$(echo "$final" | tr -d '\\' | tr '\n' ' ' | sed -n 's/.*--no-install-recommends \(.*\) && rm -rf.*/\1/p')
[ -n "$runtime" ] || fail "cannot find the runtime package list"
# One apt-cache call for them all: each call loads apt's cache (0.5 s of CPU
# here, 5.6 s for the ten packages one by one, far more on a loaded machine).
known=$(apt-cache show $runtime 2>/dev/null || true)
for pkg in $runtime; do
  grep -qx "Package: $pkg" <<<"$known" || fail "package $pkg is not known to apt (run apt-get update?)"
done

libs=$(ldd "$build/seeder/godwit-seeder" 2>/dev/null || true) # grep -q on a pipe: SIGPIPE
if grep -q libasan <<<"$libs"; then
  echo "check-dockerfile: $build is a sanitizer build (never shipped): library check skipped"
elif [ -x "$build/seeder/godwit-seeder" ] && [ -x "$build/leecher/godwit-leecher" ]; then
  # missing_library: prints the first library no runtime package provides.
  # One ldd per binary, one dpkg -S and one apt-cache call for all of their
  # libraries together: the check runs in seconds even on a loaded machine.
  missing_library() {
    local closure lib pkg
    closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances $runtime | grep -v '^ ' | sort -u)
    local -A owner=() in_closure=()
    local -a libs=()
    for pkg in $closure; do in_closure[$pkg]=1; done
    for pkg in $runtime; do # the closure starts with them: else apt-cache answered short
      [ -n "${in_closure[$pkg]:-}" ] || { echo "apt-cache depends left out $pkg itself"; return 2; }
    done
    mapfile -t libs < <(for bin in "$build/seeder/godwit-seeder" "$build/leecher/godwit-leecher" \
      "$build/ctl/godwit-ctl"; do ldd "$bin" | awk '/=> \// {print $3}'; done | sort -u)
    # dpkg -S prints "package[:arch]: path" for each path it knows; a
    # library under a merged-/usr symlink is known by its real path.
    while IFS= read -r line; do
      owner[${line#*: }]=${line%%:*}
    done < <(for lib in "${libs[@]}"; do echo "$lib"; readlink -f "$lib"; done | sort -u |
      xargs dpkg -S 2>/dev/null || true)
    local -a outside=()
    for lib in "${libs[@]}"; do
      pkg=${owner[$(readlink -f "$lib")]:-${owner[$lib]:-}}
      [ -n "$pkg" ] && [ -n "${in_closure[$pkg]:-}" ] && continue
      outside+=("$lib=${pkg:-}")
    done
    [ ${#outside[@]} -gt 0 ] || return 0
    # Not in the closure: fine only if part of every Debian base image
    # (priority "required", as debian:bookworm-slim has it).
    local entry required shown
    shown=$(for entry in "${outside[@]}"; do [ -n "${entry#*=}" ] && echo "${entry#*=}"; done |
      sort -u | xargs -r apt-cache show 2>/dev/null)
    required=$(awk '/^Package: /{p=$2} /^Priority: required/{print p}' <<<"$shown" | sort -u)
    for entry in "${outside[@]}"; do # every package asked about must be shown
      pkg=${entry#*=}
      [ -z "$pkg" ] || grep -qx "Package: $pkg" <<<"$shown" ||
        { echo "apt-cache show left out $pkg"; return 2; }
    done
    for entry in "${outside[@]}"; do
      lib=${entry%%=*} pkg=${entry#*=}
      if [ -z "$pkg" ] || ! grep -qx "$pkg" <<<"$required"; then
        echo "a binary needs $lib from ${pkg:-no package}, which the runtime stage does not install"
        return
      fi
    done
  }
  # apt-cache has answered short while other work ran on the machine (an
  # apt-get or dpkg changing its lists and status): an answer that leaves
  # out the very packages asked about (status 2) is asked again, for up to
  # a minute, and a gap is asked once more before it fails.
  status=2
  for _ in $(seq 30); do
    status=0
    missing=$(missing_library) || status=$?
    [ "$status" -eq 2 ] || break
    sleep 2
  done
  [ "$status" -ne 2 ] || fail "$missing, for a minute: is apt-get or dpkg running?"
  [ -z "$missing" ] || { sleep 1; missing=$(missing_library) || true; }
  [ -z "$missing" ] || fail "$missing"
  echo "check-dockerfile: runtime packages cover every library of the binaries"
fi
echo "check-dockerfile: ok"
