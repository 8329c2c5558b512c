#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what bench/run.sh needs beyond scripts/install-deps.sh: QEMU's
# system emulator (Debian qemu-system-x86, with SeaBIOS), the peer whose live
# migration godwit is measured against. Kept apart so the test command does not
# pull a large package it never uses. Idempotent; run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

packages=(qemu-system-x86 seabios)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#packages[@]} packages already installed"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-bench-deps: run as root (or install sudo)" >&2; exit 1; }
    sudo=sudo
  fi
  echo "install-bench-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { echo "install-bench-deps: apt-get install failed (see above)" >&2; exit 1; }
fi
[ -r /dev/kvm ] && [ -w /dev/kvm ] ||
  echo "install-bench-deps: /dev/kvm is not usable here, so bench/run.sh will skip QEMU's live migration"
