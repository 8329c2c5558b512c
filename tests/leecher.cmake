# SPDX-License-Identifier: MIT
# Tests: end-to-end migrations with real seeder and leecher processes.
add_library(godwit_leecher_harness STATIC leecher-harness.c)
target_link_libraries(godwit_leecher_harness PUBLIC godwit_seeder_harness)
add_executable(test-e2e test-e2e.c)
target_link_libraries(test-e2e PRIVATE godwit_leecher_harness)
add_dependencies(test-e2e godwit-seeder godwit-leecher godwit-linkem)

# godwit_add_e2e(NAME ARGS...): one scenario of test-e2e.
function(godwit_add_e2e name)
  add_test(NAME ${name} COMMAND test-e2e ${ARGN})
  godwit_test_properties(${name} 180 leecher grpc)
endfunction()

# The leecher's command line: flag rules, --batch against the seeder's chunks.
godwit_add_script_test(test-leecher-cli test-leecher-cli.sh leecher grpc)

godwit_add_e2e(test-e2e-migrate-1x1 migrate 1 1)
godwit_add_e2e(test-e2e-migrate-16x4 migrate 16 4)
godwit_add_e2e(test-e2e-early-finalize early)
godwit_add_e2e(test-e2e-restart-leecher restart-leecher)
godwit_add_e2e(test-e2e-restart-seeder restart-seeder)
godwit_add_e2e(test-e2e-seeder-dies seeder-dies)
godwit_add_e2e(test-e2e-downtime-flat downtime)
godwit_add_e2e(test-e2e-mount mount)
godwit_add_e2e(test-e2e-auto-workers auto-workers)
godwit_add_e2e(test-e2e-abort abort)
godwit_add_e2e(test-e2e-heap-reuse heap-reuse)
godwit_add_e2e(test-e2e-precopy-flush precopy-flush)
godwit_add_e2e(test-e2e-restart-frozen restart-frozen)
godwit_add_e2e(test-e2e-two-leechers two-leechers)
godwit_add_e2e(test-e2e-postcopy-kill-leecher postcopy-kill-leecher)
godwit_add_e2e(test-e2e-freeze-unrecorded freeze-unrecorded)
godwit_add_e2e(test-e2e-complete-without-seeder complete-without-seeder)
godwit_add_e2e(test-e2e-image-mismatch image-mismatch)
godwit_add_e2e(test-e2e-disk-full disk-full)
godwit_add_e2e(test-e2e-sparse sparse)
godwit_add_e2e(test-e2e-page-writes page-writes)
godwit_add_e2e(test-e2e-partial-chunks partial-chunks)
godwit_add_e2e(test-e2e-auto-finalize auto-finalize)
godwit_add_e2e(test-e2e-compress compress zstd)
godwit_add_e2e(test-e2e-compress-auto compress auto)
godwit_add_e2e(test-e2e-compress-random compress random)

# The fault-injection soak: a short version here (4 randomized runs, a new
# seed each time, printed so a failure can be replayed: test-soak RUNS SEED).
add_executable(test-soak test-soak.c)
target_link_libraries(test-soak PRIVATE godwit_leecher_harness)
add_dependencies(test-soak godwit-seeder godwit-leecher godwit-linkem godwit-writer)
add_test(NAME test-soak COMMAND test-soak 4)
godwit_test_properties(test-soak 600 leecher grpc)
# The load test: 64 NBD clients reading and writing the seeder while a
# leecher pulls; the migration must still end byte-exact.
add_test(NAME test-load-64-clients COMMAND test-soak 2 1 load-64-clients)
godwit_test_properties(test-load-64-clients 600 leecher grpc)

# Convergence: not_converging (event, Status, gauge) under a writer faster
# than the link, converging once it stops; never for a writer the link keeps up with.
godwit_add_script_test(test-not-converging test-not-converging.sh leecher grpc)

# godwit-ctl against a real pair: status, watch, wait, finalize, bad input, TLS.
godwit_add_script_test(test-ctl test-ctl.sh leecher grpc)
