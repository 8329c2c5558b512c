# SPDX-License-Identifier: MIT
# Tests: single faults the other tests leave out (after Finalize a link cut,
# a full destination disk, a second leecher; at it a full source disk; in
# pre-copy a seeder that stays down) that must end byte-exact or fail
# loudly with the source intact.
add_executable(test-faults test-faults.c)
target_link_libraries(test-faults PRIVATE godwit_leecher_harness)
add_dependencies(test-faults godwit-seeder godwit-leecher godwit-linkem)
add_test(NAME test-faults-postcopy-link-cut COMMAND test-faults link-cut)
godwit_test_properties(test-faults-postcopy-link-cut 180 leecher grpc)
add_test(NAME test-faults-postcopy-disk-full COMMAND test-faults disk-full)
godwit_test_properties(test-faults-postcopy-disk-full 180 leecher grpc)
add_test(NAME test-faults-postcopy-second-leecher COMMAND test-faults second-leecher)
godwit_test_properties(test-faults-postcopy-second-leecher 180 leecher grpc)
add_test(NAME test-faults-finalize-source-disk-full COMMAND test-faults source-disk-full)
godwit_test_properties(test-faults-finalize-source-disk-full 180 leecher grpc)
add_test(NAME test-faults-precopy-seeder-down COMMAND test-faults seeder-down)
godwit_test_properties(test-faults-precopy-seeder-down 180 leecher grpc)
