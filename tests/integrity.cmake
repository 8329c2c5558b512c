# SPDX-License-Identifier: MIT
# Tests: end-to-end integrity through a relay that corrupts ReadAt payloads
# (godwit-linkem --corrupt-every): checksums refuse and re-pull, or fail
# the migration loudly; --verify compares the whole images at the end.
add_executable(test-integrity test-integrity.c)
target_link_libraries(test-integrity PRIVATE godwit_leecher_harness)
add_dependencies(test-integrity godwit-seeder godwit-leecher godwit-linkem)
add_test(NAME test-integrity-corrupt COMMAND test-integrity corrupt)
godwit_test_properties(test-integrity-corrupt 120 leecher grpc)
add_test(NAME test-integrity-corrupt-all COMMAND test-integrity corrupt-all)
godwit_test_properties(test-integrity-corrupt-all 60 leecher grpc)
add_test(NAME test-integrity-verify COMMAND test-integrity verify)
godwit_test_properties(test-integrity-verify 60 leecher grpc)
add_test(NAME test-integrity-verify-bad COMMAND test-integrity verify-bad)
godwit_test_properties(test-integrity-verify-bad 60 leecher grpc)
