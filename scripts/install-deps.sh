#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs everything godwit needs to build, test and benchmark (Debian 12).
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libssl-dev
  libnbd-dev libnbd-bin libjansson-dev fuse3 libfuse3-dev
  nbdkit qemu-utils openssl procps iproute2 clang clang-format jq
  # clang's sanitizer and libFuzzer runtimes: a Recommends of clang, so
  # --no-install-recommends below leaves them out unless named.
  libclang-rt-14-dev
  libmicrohttpd-dev prometheus curl
  libzstd-dev
  libxxhash-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm for the manifest check (scripts/validate-k8s.sh), from any
# source: a machine may have them from outside Debian, which Debian's would clash with.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  || { echo "install-deps: apt-get install failed (see above)" >&2; exit 1; }
