#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test command: installs dependencies, builds godwit in three
# configurations and runs ctest on each: "plain" (-Werror, the whole suite),
# "sanitize" (-fsanitize=address,undefined, the whole suite) and "fuzz"
# (clang + libFuzzer, a short run of every fuzz target). Idempotent; fails
# loudly with the reason.
#   scripts/test.sh                               # all three
#   GODWIT_TEST_CONFIGS="plain" scripts/test.sh   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
configs=${GODWIT_TEST_CONFIGS:-"plain sanitize fuzz"}

for config in $configs; do
  target=all
  ctest_args=()
  case $config in
    plain) dir=build; flags=(-DGODWIT_WERROR=ON) ;;
    sanitize) dir=build-sanitize; flags=(-DGODWIT_WERROR=ON -DGODWIT_SANITIZE=ON) ;;
    fuzz)
      dir=build-fuzz; flags=(-DGODWIT_FUZZ=ON -DCMAKE_C_COMPILER=clang)
      target=fuzzers; ctest_args=(-L fuzz) ;;
    *) echo "test.sh: unknown configuration '$config' (plain, sanitize or fuzz)" >&2; exit 2 ;;
  esac
  echo "=== $config: configure and build in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" --target "$target"
  echo "=== $config: ctest"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600 "${ctest_args[@]}"
done
echo "test.sh: all configurations passed"
