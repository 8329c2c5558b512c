#!/usr/bin/env bash
# The test command: installs dependencies, builds godwit twice (a normal
# -Werror build and an ASan/UBSan build) and runs the whole ctest suite on
# both. Idempotent; fails loudly with the reason.
#   scripts/test.sh            # both configurations
#   GODWIT_TEST_CONFIGS=plain scripts/test.sh   # only one
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
configs=${GODWIT_TEST_CONFIGS:-"plain sanitize"}

for config in $configs; do
  case $config in
    plain) dir=build; flags=(-DGODWIT_WERROR=ON) ;;
    sanitize) dir=build-sanitize; flags=(-DGODWIT_WERROR=ON -DGODWIT_SANITIZE=ON) ;;
    *) echo "test.sh: unknown configuration '$config' (plain or sanitize)" >&2; exit 2 ;;
  esac
  echo "=== $config: configure and build in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $config: ctest"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300
done
echo "test.sh: all configurations passed"
