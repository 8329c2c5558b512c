/* SPDX-License-Identifier: MIT */
/* The gRPC client: one channel per rpc_channel, each with a local
 * subchannel pool so it owns its TCP connection; unary calls on a pluck
 * queue each calling thread keeps per channel (created at its first call,
 * destroyed when the thread ends or the channel closes), not a queue
 * created and destroyed around every call. */
#include "rpc-client.h"

#include "internal.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_channel {
    grpc_channel *channel; /* thread-safe in gRPC itself */
    size_t max_message;
    pthread_key_t queue; /* each thread's own pluck queue for this channel */
};

/* Ends a pluck queue no call is using: shut down, drained, destroyed. */
static void queue_destroy(void *queue)
{
    grpc_completion_queue *cq = queue;
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* The calling thread's pluck queue for CH, created at its first call;
 * NULL if it cannot be kept (the caller then uses a queue of its own). */
static grpc_completion_queue *thread_queue(struct rpc_channel *ch)
{
    grpc_completion_queue *cq = pthread_getspecific(ch->queue);
    if (cq)
        return cq;
    cq = grpc_completion_queue_create_for_pluck(NULL);
    if (pthread_setspecific(ch->queue, cq) != 0) {
        queue_destroy(cq);
        return NULL;
    }
    return cq;
}

static grpc_channel_credentials *client_credentials(const struct rpc_tls *tls, char *err,
                                                    size_t errlen)
{
    if (!tls->client_ca && !tls->cert)
        return grpc_insecure_credentials_create();
    char *ca = tls->client_ca ? rpc_read_pem(tls->client_ca, err, errlen) : NULL;
    char *cert = tls->cert ? rpc_read_pem(tls->cert, err, errlen) : NULL;
    char *key = tls->key ? rpc_read_pem(tls->key, err, errlen) : NULL;
    grpc_channel_credentials *creds = NULL;
    if ((!tls->client_ca || ca) && (!tls->cert || (cert && key))) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    }
    free(ca);
    free(cert);
    free(key);
    return creds;
}

struct rpc_channel *rpc_channel_open(const struct rpc_channel_config *config, char *err,
                                     size_t errlen)
{
    if (!config->target || !config->target[0]) {
        snprintf(err, errlen, "no gRPC target address given");
        return NULL;
    }
    grpc_init();
    grpc_channel_credentials *creds = client_credentials(&config->tls, err, errlen);
    if (!creds) {
        grpc_shutdown();
        return NULL;
    }
    struct rpc_channel *ch = calloc(1, sizeof *ch);
    int key_err = ch ? pthread_key_create(&ch->queue, queue_destroy) : ENOMEM;
    if (key_err) {
        snprintf(err, errlen, "cannot open a gRPC channel to %s: %s", config->target,
                 strerror(key_err));
        free(ch);
        grpc_channel_credentials_release(creds);
        grpc_shutdown();
        return NULL;
    }
    ch->max_message = config->max_message ? config->max_message : 4u << 20;
    grpc_arg args[5] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)ch->max_message},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)ch->max_message},
        /* Reconnect quickly after a link blip; the caller does its own backoff.
         * Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC takes it as the time a
         * connection attempt (TCP, TLS, HTTP/2 settings) may take, and at
         * 100 ms a TLS handshake on a busy host or a long link never made it. */
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = 1000},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 100},
    };
    grpc_channel_args channel_args = {5, args};
    ch->channel = grpc_channel_create(config->target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

void rpc_channel_close(struct rpc_channel *channel)
{
    if (!channel)
        return;
    /* Threads still running keep their queue (a few hundred bytes) once
     * the key is gone; the caller's own is destroyed here. */
    grpc_completion_queue *cq = pthread_getspecific(channel->queue);
    pthread_key_delete(channel->queue);
    if (cq)
        queue_destroy(cq);
    grpc_channel_destroy(channel->channel);
    free(channel);
    grpc_shutdown();
}

void rpc_channel_connect(struct rpc_channel *channel)
{
    (void)grpc_channel_check_connectivity_state(channel->channel, 1); /* 1: try to connect */
}

/* Runs one unary call; on OK hands over the reply message in *REPLY. */
static grpc_status_code call_unary(struct rpc_channel *ch, const char *method,
                                   const ProtobufCMessage *request, grpc_byte_buffer **reply,
                                   int timeout_ms, struct rpc_result *result)
{
    grpc_completion_queue *kept = thread_queue(ch);
    grpc_completion_queue *cq = kept ? kept : grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    grpc_byte_buffer *out = rpc_pack(request), *in = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6] = {
        {.op = GRPC_OP_SEND_INITIAL_METADATA},  {.op = GRPC_OP_SEND_MESSAGE},
        {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT}, {.op = GRPC_OP_RECV_INITIAL_METADATA},
        {.op = GRPC_OP_RECV_MESSAGE},           {.op = GRPC_OP_RECV_STATUS_ON_CLIENT}};
    ops[1].data.send_message.send_message = out;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].data.recv_message.recv_message = &in;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    else
        status = GRPC_STATUS_INTERNAL;
    char *text = grpc_slice_to_c_string(details);
    snprintf(result->message, sizeof result->message, "%s", text);
    gpr_free(text);
    if (status == GRPC_STATUS_OK && !in) {
        status = GRPC_STATUS_INTERNAL;
        snprintf(result->message, sizeof result->message, "the server sent no reply message");
    }
    if (status == GRPC_STATUS_OK)
        *reply = in, in = NULL;
    result->status = status;
    if (in)
        grpc_byte_buffer_destroy(in);
    grpc_byte_buffer_destroy(out);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    if (!kept)
        queue_destroy(cq);
    return status;
}

grpc_status_code rpc_call_raw(struct rpc_channel *channel, const char *method,
                              const ProtobufCMessage *request, struct rpc_response *reply,
                              int timeout_ms, struct rpc_result *result)
{
    grpc_byte_buffer *buffer;
    *reply = (struct rpc_response){NULL, 0, 0};
    if (call_unary(channel, method, request, &buffer, timeout_ms, result) != GRPC_STATUS_OK)
        return result->status;
    grpc_byte_buffer_reader reader;
    if (grpc_byte_buffer_reader_init(&reader, buffer)) {
        size_t room = 0;
        grpc_slice slice;
        while (grpc_byte_buffer_reader_next(&reader, &slice)) {
            if (reply->count == room) {
                room = room ? 2 * room : 32;
                grpc_slice *more = realloc(reply->slices, room * sizeof *reply->slices);
                if (!more) {
                    grpc_slice_unref(slice);
                    rpc_response_free(reply);
                    result->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
                    snprintf(result->message, sizeof result->message, "out of memory");
                    break;
                }
                reply->slices = more;
            }
            reply->slices[reply->count++] = slice;
            reply->length += GRPC_SLICE_LENGTH(slice);
        }
        grpc_byte_buffer_reader_destroy(&reader);
    }
    grpc_byte_buffer_destroy(buffer);
    return result->status;
}

void rpc_response_free(struct rpc_response *reply)
{
    for (size_t i = 0; i < reply->count; i++)
        grpc_slice_unref(reply->slices[i]);
    free(reply->slices);
    *reply = (struct rpc_response){NULL, 0, 0};
}

int rpc_response_iov(const struct rpc_response *reply, size_t offset, size_t length,
                     struct iovec *iov, int max)
{
    if (offset > reply->length || length > reply->length - offset)
        return -1;
    int n = 0;
    for (size_t i = 0; i < reply->count && length > 0; i++) {
        size_t len = GRPC_SLICE_LENGTH(reply->slices[i]);
        if (offset >= len) {
            offset -= len;
            continue;
        }
        if (n == max)
            return -1;
        size_t take = len - offset < length ? len - offset : length;
        iov[n++] = (struct iovec){GRPC_SLICE_START_PTR(reply->slices[i]) + offset, take};
        length -= take, offset = 0;
    }
    return n;
}

grpc_status_code rpc_call(struct rpc_channel *channel, const char *method,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_type,
                          ProtobufCMessage **response, int timeout_ms, struct rpc_result *result)
{
    grpc_byte_buffer *reply;
    *response = NULL;
    if (call_unary(channel, method, request, &reply, timeout_ms, result) != GRPC_STATUS_OK)
        return result->status;
    *response = rpc_unpack(reply, response_type);
    grpc_byte_buffer_destroy(reply);
    if (!*response) {
        result->status = GRPC_STATUS_INTERNAL;
        snprintf(result->message, sizeof result->message, "the reply is not a valid %s",
                 response_type->name);
    }
    return result->status;
}
