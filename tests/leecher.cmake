# SPDX-License-Identifier: MIT
# Tests: end-to-end migrations with real seeder and leecher processes.
add_library(godwit_leecher_harness STATIC leecher-harness.c)
target_link_libraries(godwit_leecher_harness PUBLIC godwit_seeder_harness)
add_executable(leecher-e2e leecher-e2e.c)
target_link_libraries(leecher-e2e PRIVATE godwit_leecher_harness)
add_dependencies(leecher-e2e godwit-seeder godwit-leecher godwit-linkem)

# godwit_add_e2e(NAME ARGS...)
function(godwit_add_e2e name)
  add_test(NAME ${name} COMMAND leecher-e2e ${ARGN})
  set_tests_properties(${name} PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77
    ENVIRONMENT "GODWIT_BIN=${CMAKE_BINARY_DIR};GODWIT_SOURCE=${CMAKE_SOURCE_DIR}")
endfunction()

godwit_add_e2e(e2e-migrate-1x1 migrate 1 1)
godwit_add_e2e(e2e-migrate-16x4 migrate 16 4)
godwit_add_e2e(e2e-early-finalize early)
godwit_add_e2e(e2e-restart-leecher restart-leecher)
godwit_add_e2e(e2e-restart-seeder restart-seeder)
godwit_add_e2e(e2e-seeder-dies seeder-dies)
godwit_add_e2e(e2e-downtime-flat downtime)
godwit_add_e2e(e2e-mount mount)
godwit_add_e2e(e2e-auto-workers auto-workers)

# The fault-injection soak: a short version here (4 randomized runs, a new
# seed each time, printed so a failure can be replayed: soak RUNS SEED).
add_executable(soak soak.c)
target_link_libraries(soak PRIVATE godwit_leecher_harness)
add_dependencies(soak godwit-seeder godwit-leecher godwit-linkem godwit-writer)
add_test(NAME soak COMMAND soak 4)
# The load test: 64 NBD clients reading and writing the seeder while a
# leecher pulls; the migration must still end byte-exact.
add_test(NAME load-64-clients COMMAND soak 2 1 load-64-clients)
set_tests_properties(soak load-64-clients PROPERTIES TIMEOUT 600
  ENVIRONMENT "GODWIT_BIN=${CMAKE_BINARY_DIR};GODWIT_SOURCE=${CMAKE_SOURCE_DIR}")
