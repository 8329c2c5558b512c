#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test command: installs dependencies, checks the formatting of every C
# file, builds godwit in four configurations and runs ctest on each:
# "plain" (-Werror, the whole suite), "sanitize" (-fsanitize=address,undefined,
# the whole suite), "tsan" (-fsanitize=thread, the tests that neither link
# gRPC nor start a daemon that does: gRPC's own threads are not instrumented,
# so TSan cannot see their synchronisation) and "fuzz" (clang + libFuzzer, a
# short run of every fuzz target); then "container" (scripts/container-test.sh:
# podman builds the image from the Dockerfile and migrates between containers
# and Pods; nothing is built on the host). Idempotent; fails loudly with the
# reason.
#   scripts/test.sh                                  # format and all five
#   GODWIT_TEST_CONFIGS="format plain" scripts/test.sh   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
configs=${GODWIT_TEST_CONFIGS:-"format plain sanitize tsan fuzz container"}

# Every C file of the tree, committed or new (git), or all under it (a tarball).
c_files() {
  if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -co --exclude-standard -- '*.c' '*.h'
  else
    find . -path './build*' -prune -o \( -name '*.c' -o -name '*.h' \) -print
  fi
}

check_format() {
  echo "=== format: clang-format --dry-run -Werror on every C file"
  local files
  mapfile -t files < <(c_files)
  clang-format --dry-run -Werror "${files[@]}" ||
    { echo "test.sh: files above are not formatted: run clang-format -i on them" >&2; exit 1; }
  echo "=== format: ${#files[@]} files formatted"
}

for config in $configs; do
  target=all
  ctest_args=()
  case $config in
    format) check_format; continue ;;
    plain) dir=build; flags=(-DGODWIT_WERROR=ON) ;;
    sanitize) dir=build-sanitize; flags=(-DGODWIT_WERROR=ON -DGODWIT_SANITIZE=ON) ;;
    tsan)
      dir=build-tsan; flags=(-DGODWIT_WERROR=ON -DGODWIT_TSAN=ON)
      ctest_args=(-LE 'grpc|ship') ;;
    fuzz)
      dir=build-fuzz; flags=(-DGODWIT_FUZZ=ON -DCMAKE_C_COMPILER=clang)
      target=fuzzers; ctest_args=(-L fuzz) ;;
    container)
      dir=build-container; flags=(-DGODWIT_CONTAINER_TEST=ON)
      target=""; ctest_args=(-L container --verbose) ;;
    *)
      echo "test.sh: unknown configuration '$config' (format, plain, sanitize, tsan, fuzz or container)" >&2
      exit 2 ;;
  esac
  echo "=== $config: configure and build in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  [ -z "$target" ] || cmake --build "$dir" -j "$jobs" --target "$target"
  echo "=== $config: ctest"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600 "${ctest_args[@]}"
done
echo "test.sh: all configurations passed"
