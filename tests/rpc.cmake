# SPDX-License-Identifier: MIT
# Tests: the gRPC layer (server, client, health, reflection) in-process.
godwit_add_test(test-rpc-server SOURCES test-rpc-server.c rpc-stream.c
  LIBS godwit_rpc LABELS rpc grpc)
godwit_add_test(test-rpc-tls SOURCES test-rpc-tls.c LIBS godwit_rpc LABELS rpc grpc)
