# SPDX-License-Identifier: MIT
# Shared helpers for shell tests (sourced). Tests exit 77 to mean "skipped".
set -euo pipefail

: "${GODWIT_BIN:?GODWIT_BIN must point at the build directory}"
SEEDER=$GODWIT_BIN/seeder/godwit-seeder
LEECHER=$GODWIT_BIN/leecher/godwit-leecher

# Daemons started here inherit nothing but stdio: a process that outlives
# the test must not hold a lock (or socket) of whoever ran ctest.
for fd in /proc/$$/fd/[3-9]; do
  [ -e "$fd" ] && eval "exec ${fd##*/}>&-"
done

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

# ready_field EVENTS PID FIELD [SECONDS]: waits until the daemon PID (started
# with --log-format json and its stdout in EVENTS) prints its ready event,
# then prints FIELD of it (e.g. port). Tests never pick ports: they start
# daemons on port 0 and read the bound port here.
ready_field() {
  local i line
  for i in $(seq 1 $((${4:-10} * 20))); do
    if line=$(grep -m1 '"event":"ready"' "$1" 2>/dev/null); then
      jq -er ".$3" <<<"$line" || fail "the ready event has no $3: $line"
      return 0
    fi
    kill -0 "$2" 2>/dev/null || fail "process $2 exited before it was ready"
    sleep 0.05
  done
  fail "process $2 printed no ready event to $1 in ${4:-10} s"
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

# make_test_ca NAME / make_test_cert NAME CA: a throwaway CA and a
# certificate it signs for 127.0.0.1 and localhost (openssl CLI), in the
# current directory as NAME.crt and NAME.key.
make_test_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
make_test_cert() {
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
