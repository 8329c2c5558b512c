#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Validates k8s/*.yaml against the real Kubernetes schemas (kubernetes-models
# from the npm registry, pinned in k8s/validate/package-lock.json), after
# proving the validator rejects a broken manifest. Installs node/npm with
# apt if missing; exits 77 (skipped) only if that is impossible.
set -euo pipefail
cd "$(dirname "$0")/../k8s/validate"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "validate-k8s: node and npm are needed (apt-get install nodejs npm)" >&2
    exit 77
  fi
fi
[ -d node_modules/kubernetes-models ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null
node validate.mjs --self-check ../*.yaml
