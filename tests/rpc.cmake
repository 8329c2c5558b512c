# SPDX-License-Identifier: MIT
# Tests: the gRPC layer (server, client, health, reflection) in-process.
godwit_add_test(rpc-server-test SOURCES rpc-server-test.c rpc-stream.c LIBS godwit_rpc)
godwit_add_test(rpc-tls-test SOURCES rpc-tls-test.c LIBS godwit_rpc)
