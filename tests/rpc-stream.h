/* SPDX-License-Identifier: MIT */
/* A minimal streaming gRPC client for tests: open a call, send messages,
 * receive messages, close. Plays the part of grpcurl's reflection client
 * and of a health Watch client. */
#ifndef GODWIT_TEST_RPC_STREAM_H
#define GODWIT_TEST_RPC_STREAM_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

struct test_stream {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    bool started;
};

void test_stream_open(struct test_stream *s, const char *target, const char *method);
/* Sends MESSAGE (NULL: half-close). */
void test_stream_send(struct test_stream *s, const ProtobufCMessage *message);
/* Receives one message as TYPE; NULL at the end of the stream. */
ProtobufCMessage *test_stream_recv(struct test_stream *s, const ProtobufCMessageDescriptor *type,
                                   int timeout_ms);
/* Cancels (if still open), collects the status, frees everything. */
grpc_status_code test_stream_close(struct test_stream *s);

#endif
