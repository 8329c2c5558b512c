#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Dockerfile check passes on ours and fails on broken copies (root user,
# a missing runtime library, a package apt does not know, an unpinned base
# image, no HEALTHCHECK).
source "$(dirname "$0")/functions.sh"
requires apt-cache
cd "$GODWIT_SOURCE"
bash scripts/check-dockerfile.sh "$GODWIT_BIN" || fail "check-dockerfile rejects our Dockerfile"
broken() { # broken NAME SED-EXPRESSION: the check must reject that change
  sed "$2" Dockerfile >"$TEST_DIR/$1"
  if DOCKERFILE="$TEST_DIR/$1" bash scripts/check-dockerfile.sh "$GODWIT_BIN" 2>/dev/null; then
    fail "check-dockerfile accepted a Dockerfile with $1"
  fi
}
broken root-user 's/^USER 10001/USER root/'
libs=$(ldd "$GODWIT_BIN/seeder/godwit-seeder") # not piped into grep -q: SIGPIPE under pipefail
if ! grep -q libasan <<<"$libs"; then # libraries: plain builds only
  broken missing-grpc 's/libgrpc29 //'
fi
broken unknown-package 's/libgrpc29 /libgrpc29 libnosuchpkg /'
broken latest-base 's/^FROM debian:bookworm-slim$/FROM debian:latest/'
broken no-healthcheck '/^HEALTHCHECK/,+1d'
echo "test-ship-dockerfile: ok"
