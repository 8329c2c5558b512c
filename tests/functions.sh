# SPDX-License-Identifier: MIT
# Shared helpers for shell tests (sourced). Tests exit 77 to mean "skipped".
set -euo pipefail

: "${GODWIT_BIN:?GODWIT_BIN must point at the build directory}"
SEEDER=$GODWIT_BIN/seeder/godwit-seeder
LEECHER=$GODWIT_BIN/leecher/godwit-leecher

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/godwit-test-XXXXXX")
cleanup_pids=()
cleanup() {
  for pid in "${cleanup_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${cleanup_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${GODWIT_KEEP_TEST_DIRS:-}" ] || rm -rf "$TEST_DIR"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
requires() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  local port
  for port in $(shuf -i 20000-32000 -n 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || { echo "$port"; return; }
  done
  fail "no free port"
}

# wait_port PORT [SECONDS]: until something listens there.
wait_port() {
  local i
  for i in $(seq 1 $((${2:-10} * 20))); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# wait_path PATH [SECONDS]
wait_path() {
  local i
  for i in $(seq 1 $((${2:-10} * 20))); do
    [ -e "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

# expect_exit CODE CMD...: runs CMD, checks its exit code, keeps stderr in $ERR.
expect_exit() {
  local want=$1 got=0
  shift
  "$@" >"$TEST_DIR/out" 2>"$TEST_DIR/err" || got=$?
  ERR=$(cat "$TEST_DIR/err")
  OUT=$(cat "$TEST_DIR/out")
  [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want; stderr: $ERR"
}

# one_sentence: $ERR is a single line naming the program.
one_sentence() {
  [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "expected one line on stderr, got: $ERR"
  case $ERR in *"$1"*) ;; *) fail "stderr '$ERR' does not mention '$1'" ;; esac
}
