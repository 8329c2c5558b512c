# SPDX-License-Identifier: MIT
# Tests: godwit-seeder as a real process (NBD via libnbd, gRPC via rpc_call).
add_library(godwit_seeder_harness STATIC seeder-harness.c)
target_link_libraries(godwit_seeder_harness PUBLIC godwit_testlib godwit_rpc PkgConfig::LIBNBD)

godwit_add_test(seeder-api SOURCES seeder-api.c LIBS godwit_seeder_harness)
add_dependencies(seeder-api godwit-seeder)

godwit_add_script_test(seeder-cli seeder-cli.sh)
godwit_add_test(seeder-mount SOURCES seeder-mount.c LIBS godwit_seeder_harness)
add_dependencies(seeder-mount godwit-seeder)
godwit_add_script_test(tls tls.sh)
