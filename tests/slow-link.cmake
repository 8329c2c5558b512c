# SPDX-License-Identifier: MIT
# Tests: the leecher on a slow emulated link (control never waits behind
# bulk data; --max-bandwidth holds).
add_executable(test-slow-link test-slow-link.c)
target_link_libraries(test-slow-link PRIVATE godwit_leecher_harness)
add_dependencies(test-slow-link godwit-seeder godwit-leecher godwit-linkem)
add_test(NAME test-slow-link-finalize COMMAND test-slow-link finalize)
godwit_test_properties(test-slow-link-finalize 120 leecher grpc)
add_test(NAME test-slow-link-max-bandwidth COMMAND test-slow-link max-bandwidth)
godwit_test_properties(test-slow-link-max-bandwidth 120 leecher grpc)
