# SPDX-License-Identifier: MIT
# Tests: unit tests of common/ (no servers).
godwit_add_test(test-unit-chunk SOURCES test-unit-chunk.c LABELS unit)
godwit_add_test(test-unit-dirty-set SOURCES test-unit-dirty-set.c
  ${CMAKE_SOURCE_DIR}/seeder/dirty-set.c LABELS unit)
target_include_directories(test-unit-dirty-set PRIVATE ${CMAKE_SOURCE_DIR}/seeder)
godwit_add_test(test-unit-options SOURCES test-unit-options.c LABELS unit)
godwit_add_test(test-unit-io SOURCES test-unit-io.c LIBS godwit_rpc LABELS unit grpc)
godwit_add_test(test-unit-proto-wire SOURCES test-unit-proto-wire.c LIBS godwit_rpc
  LABELS unit grpc)
godwit_add_test(test-unit-compression SOURCES test-unit-compression.c LABELS unit)
godwit_add_test(test-linkem SOURCES test-linkem.c LABELS unit)
add_dependencies(test-linkem godwit-linkem)
godwit_add_test(test-unit-rate-limit SOURCES test-unit-rate-limit.c
  ${CMAKE_SOURCE_DIR}/leecher/rate-limit.c LABELS unit)
target_include_directories(test-unit-rate-limit PRIVATE ${CMAKE_SOURCE_DIR}/leecher)
godwit_add_test(test-unit-bulk-budget SOURCES test-unit-bulk-budget.c
  ${CMAKE_SOURCE_DIR}/leecher/bulk-budget.c LABELS unit)
target_include_directories(test-unit-bulk-budget PRIVATE ${CMAKE_SOURCE_DIR}/leecher)
godwit_add_test(test-unit-chunk-map SOURCES test-unit-chunk-map.c
  ${CMAKE_SOURCE_DIR}/leecher/chunk-map.c LABELS unit)
target_include_directories(test-unit-chunk-map PRIVATE ${CMAKE_SOURCE_DIR}/leecher)
godwit_add_script_test(test-tls-floor test-tls-floor.sh unit)
