# SPDX-License-Identifier: MIT
# Tests: godwit-seeder as a real process (NBD via libnbd, gRPC via rpc_call).
add_library(godwit_seeder_harness STATIC seeder-harness.c)
target_link_libraries(godwit_seeder_harness PUBLIC godwit_testlib godwit_rpc PkgConfig::LIBNBD)

godwit_add_test(test-seeder-api SOURCES test-seeder-api.c
  LIBS godwit_seeder_harness LABELS seeder grpc)
add_dependencies(test-seeder-api godwit-seeder)

godwit_add_script_test(test-seeder-cli test-seeder-cli.sh seeder grpc)
godwit_add_test(test-seeder-mount SOURCES test-seeder-mount.c
  LIBS godwit_seeder_harness LABELS seeder grpc)
add_dependencies(test-seeder-mount godwit-seeder)
godwit_add_script_test(test-tls test-tls.sh seeder leecher grpc)
# The stand-in workload (bench/writer.c) against a seeder that comes and goes.
godwit_add_script_test(test-writer-retry test-writer-retry.sh seeder grpc)
godwit_add_test(test-freeze SOURCES test-freeze.c LIBS godwit_seeder_harness LABELS seeder grpc)
add_dependencies(test-freeze godwit-seeder godwit-ctl)
godwit_add_test(test-seeder-sessions SOURCES test-seeder-sessions.c
  LIBS godwit_seeder_harness LABELS seeder grpc)
add_dependencies(test-seeder-sessions godwit-seeder)
