/* SPDX-License-Identifier: MIT */
/* A minimal streaming gRPC client for tests (one op at a time, plucked). */
#include "rpc-stream.h"

#include "testlib.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

static bool run(struct test_stream *s, grpc_op *ops, size_t n, int timeout_ms)
{
    CHECK(grpc_call_start_batch(s->call, ops, n, ops, NULL) == GRPC_CALL_OK, "start_batch");
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(s->cq, ops, deadline, NULL);
    CHECK(ev.type == GRPC_OP_COMPLETE, "stream op timed out");
    return ev.success;
}

void test_stream_open(struct test_stream *s, const char *target, const char *method)
{
    grpc_init();
    *s = (struct test_stream){0};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    s->channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice path = grpc_slice_from_copied_string(method);
    s->call = grpc_channel_create_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, path, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(path); /* the call holds its own reference */
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    s->details = grpc_empty_slice();
    grpc_op op = {.op = GRPC_OP_SEND_INITIAL_METADATA};
    CHECK(run(s, &op, 1, 5000), "send initial metadata");
}

void test_stream_send(struct test_stream *s, const ProtobufCMessage *message)
{
    grpc_op op = {.op = message ? GRPC_OP_SEND_MESSAGE : GRPC_OP_SEND_CLOSE_FROM_CLIENT};
    grpc_byte_buffer *buffer = NULL;
    if (message) {
        size_t size = protobuf_c_message_get_packed_size(message);
        grpc_slice slice = grpc_slice_malloc(size);
        protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
        buffer = grpc_raw_byte_buffer_create(&slice, 1);
        grpc_slice_unref(slice);
        op.data.send_message.send_message = buffer;
    }
    CHECK(run(s, &op, 1, 5000), "send");
    if (buffer)
        grpc_byte_buffer_destroy(buffer);
}

ProtobufCMessage *test_stream_recv(struct test_stream *s, const ProtobufCMessageDescriptor *type,
                                   int timeout_ms)
{
    grpc_byte_buffer *buffer = NULL;
    grpc_op ops[2] = {{.op = GRPC_OP_RECV_INITIAL_METADATA}, {.op = GRPC_OP_RECV_MESSAGE}};
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    ops[1].data.recv_message.recv_message = &buffer;
    size_t first = s->started ? 1 : 0;
    s->started = true;
    run(s, ops + first, 2 - first, timeout_ms);
    if (!buffer)
        return NULL;
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, buffer);
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, GRPC_SLICE_LENGTH(slice),
                                                          GRPC_SLICE_START_PTR(slice));
    grpc_slice_unref(slice);
    grpc_byte_buffer_destroy(buffer);
    CHECK(message, "stream message does not decode as %s", type->name);
    return message;
}

grpc_status_code test_stream_close(struct test_stream *s)
{
    grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
    op.data.recv_status_on_client.trailing_metadata = &s->trailing;
    op.data.recv_status_on_client.status = &s->status;
    op.data.recv_status_on_client.status_details = &s->details;
    grpc_call_cancel(s->call, NULL);
    run(s, &op, 1, 5000);
    grpc_call_unref(s->call);
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_completion_queue_shutdown(s->cq);
    while (
        grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
        GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(s->cq);
    grpc_channel_destroy(s->channel);
    grpc_shutdown();
    return s->status;
}
