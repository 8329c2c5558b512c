# SPDX-License-Identifier: MIT
# Tests: the NBD server library (in-process, libnbd) and real clients.
godwit_add_script_test(test-nbd-clients test-nbd-clients.sh nbd grpc)

# The memory backend shared by the C tests below, and the libnbd-driven
# test of every command, option and error path.
add_library(godwit_test_nbd_memory STATIC nbd-memory.c)
target_link_libraries(godwit_test_nbd_memory PUBLIC godwit_nbd)
godwit_add_test(test-nbd-libnbd SOURCES test-nbd-libnbd.c
  LIBS godwit_test_nbd_memory PkgConfig::LIBNBD LABELS nbd)
godwit_add_test(test-nbd-raw SOURCES test-nbd-raw.c
  LIBS godwit_test_nbd_memory PkgConfig::LIBNBD LABELS nbd)
# Structured replies, metadata contexts and block status (libnbd).
godwit_add_test(test-nbd-block-status SOURCES test-nbd-block-status.c
  LIBS godwit_test_nbd_memory PkgConfig::LIBNBD LABELS nbd)

# A file served over a unix socket until SIGTERM (a helper), and the real
# clients (nbdinfo, nbdcopy) against it.
add_executable(nbd-serve-file nbd-serve-file.c)
target_link_libraries(nbd-serve-file PRIVATE godwit_nbd)
godwit_add_script_test(test-nbd-serve-file test-nbd-serve-file.sh nbd)

# The errno -> NBD error mapping and its request flags (nbdkit's rule).
godwit_add_test(test-nbd-errno SOURCES test-nbd-errno.c
  LIBS godwit_test_nbd_memory PkgConfig::LIBNBD LABELS nbd)
target_include_directories(test-nbd-errno PRIVATE ${CMAKE_SOURCE_DIR}/nbd)

# The seeder's block status against real clients: nbdinfo --map equals
# nbdkit file's, nbdcopy of a 2 GiB image with 10% data stays sparse.
godwit_add_script_test(test-nbd-map test-nbd-map.sh nbd grpc) # starts a seeder, which links gRPC
