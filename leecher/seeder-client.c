/* SPDX-License-Identifier: MIT */
/* The typed Seeder client: a pool of gRPC channels (each its own TCP
 * connection) for background ReadAt, one more for control calls and
 * on-demand reads, the method names, which channel each call takes, the
 * round trips for the bulk byte budget, the bandwidth bucket, whether ReadAt asks for
 * compression, and the checks that a ReadAt reply has the shape asked for
 * (its data decoded if it came compressed) and the bytes its checksum
 * says. */
#include "seeder-client.h"

#include "bulk-budget.h"
#include "compress-choice.h"
#include "compression.h"
#include "proto-wire.h"
#include "rate-limit.h"
#include "read-checksum.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    CONTROL_TIMEOUT_MS = 10000,
    READ_TIMEOUT_MS = 30000,
    DIGEST_TIMEOUT_MS = 60000,
    MAX_MESSAGE = 32u << 20, /* above the seeder's 16 MiB ReadAt limit */
};

struct seeder_client {
    struct rpc_channel **channels; /* the bulk pool; read-only after open; gRPC channels are
                                      thread-safe */
    unsigned n_channels;
    struct rpc_channel *control;     /* a connection of its own: never behind bulk replies */
    struct bulk_budget *budget;      /* the caller's (its own lock), or NULL */
    struct rate_limit bandwidth;     /* --max-bandwidth over every ReadAt; its own lock */
    struct compress_choice compress; /* --compress; its own lock */
    uint64_t session;                /* set by seeder_client_track before other threads call */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct seeder_client *seeder_client_open(const struct seeder_client_config *config, char *err,
                                         size_t errlen)
{
    struct seeder_client *c = calloc(1, sizeof *c);
    struct rpc_channel **channels = calloc(config->channels, sizeof *channels);
    if (!c || !channels) {
        free(c);
        free(channels);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->channels = channels;
    c->budget = config->budget;
    rate_limit_init(&c->bandwidth, config->max_bandwidth, NULL, NULL);
    compress_choice_init(&c->compress, config->compress, SEEDER_AUTO_COMPRESS_BELOW);
    struct rpc_channel_config channel = {
        .target = config->target, .max_message = MAX_MESSAGE, .tls = config->tls};
    if (!(c->control = rpc_channel_open(&channel, err, errlen))) {
        seeder_client_close(c);
        return NULL;
    }
    for (; c->n_channels < config->channels; c->n_channels++) {
        if (!(c->channels[c->n_channels] = rpc_channel_open(&channel, err, errlen))) {
            seeder_client_close(c);
            return NULL;
        }
    }
    /* Every connection's handshake runs while Info, Track and Holes do,
     * not in front of the first ReadAt of each channel. */
    rpc_channel_connect(c->control);
    for (unsigned i = 0; i < c->n_channels; i++)
        rpc_channel_connect(c->channels[i]);
    return c;
}

void seeder_client_close(struct seeder_client *client)
{
    if (!client)
        return;
    for (unsigned i = 0; i < client->n_channels; i++)
        rpc_channel_close(client->channels[i]);
    if (client->control)
        rpc_channel_close(client->control);
    rate_limit_destroy(&client->bandwidth);
    compress_choice_destroy(&client->compress);
    free(client->channels);
    free(client);
}

/* The channel of Info, Track, Sync, Finalize, Complete and on-demand
 * reads: a connection no background ReadAt uses. */
static struct rpc_channel *control_channel(struct seeder_client *c)
{
    return c->control;
}

/* The channel of a ReadAt on LANE. */
static struct rpc_channel *bulk_channel(struct seeder_client *c, uint64_t lane)
{
    return c->channels[lane % c->n_channels];
}

/* A control call of Seeder.METHOD; the reply or NULL with *RESULT. */
static ProtobufCMessage *control_call(struct seeder_client *c, const char *method,
                                      const ProtobufCMessage *request,
                                      const ProtobufCMessageDescriptor *reply_type,
                                      struct rpc_result *result)
{
    char path[64];
    snprintf(path, sizeof path, "/godwit.v1.Seeder/%s", method);
    ProtobufCMessage *reply;
    uint64_t start = now_us();
    if (rpc_call(control_channel(c), path, request, reply_type, &reply, CONTROL_TIMEOUT_MS,
                 result) != GRPC_STATUS_OK)
        return NULL;
    if (c->budget)
        bulk_budget_round_trip(c->budget, now_us() - start);
    return reply;
}

Godwit__V1__InfoResponse *seeder_client_info(struct seeder_client *client,
                                             struct rpc_result *result)
{
    return seeder_client_info_acked(client, 0, result);
}

Godwit__V1__InfoResponse *seeder_client_info_acked(struct seeder_client *client,
                                                   uint64_t ack_generation,
                                                   struct rpc_result *result)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    request.session_id = client->session;
    request.ack_generation = ack_generation;
    return (Godwit__V1__InfoResponse *)control_call(client, "Info", &request.base,
                                                    &godwit__v1__info_response__descriptor, result);
}

Godwit__V1__SyncResponse *seeder_client_sync(struct seeder_client *client, const char *image_id,
                                             uint64_t ack_generation, struct rpc_result *result)
{
    Godwit__V1__SyncRequest request = GODWIT__V1__SYNC_REQUEST__INIT;
    request.image_id = (char *)image_id;
    request.ack_generation = ack_generation;
    request.session_id = client->session;
    return (Godwit__V1__SyncResponse *)control_call(client, "Sync", &request.base,
                                                    &godwit__v1__sync_response__descriptor, result);
}

Godwit__V1__FinalizeResponse *seeder_client_finalize(struct seeder_client *client,
                                                     const char *image_id, uint64_t ack_generation,
                                                     struct rpc_result *result)
{
    Godwit__V1__FinalizeRequest request = GODWIT__V1__FINALIZE_REQUEST__INIT;
    request.image_id = (char *)image_id;
    request.ack_generation = ack_generation;
    request.session_id = client->session;
    return (Godwit__V1__FinalizeResponse *)control_call(
        client, "Finalize", &request.base, &godwit__v1__finalize_response__descriptor, result);
}

Godwit__V1__HolesResponse *seeder_client_holes(struct seeder_client *client, const char *image_id,
                                               uint64_t offset, uint64_t length,
                                               struct rpc_result *result)
{
    Godwit__V1__HolesRequest request = GODWIT__V1__HOLES_REQUEST__INIT;
    request.image_id = (char *)image_id;
    request.offset = offset;
    request.length = length;
    return (Godwit__V1__HolesResponse *)control_call(
        client, "Holes", &request.base, &godwit__v1__holes_response__descriptor, result);
}

/* A control call whose reply carries nothing: only its status counts. */
static grpc_status_code status_call(struct seeder_client *c, const char *method,
                                    const ProtobufCMessage *request,
                                    const ProtobufCMessageDescriptor *reply_type,
                                    struct rpc_result *result)
{
    ProtobufCMessage *reply = control_call(c, method, request, reply_type, result);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return result->status;
}

void seeder_client_use_session(struct seeder_client *client, uint64_t session)
{
    client->session = session;
}

grpc_status_code seeder_client_track(struct seeder_client *client, bool new_session,
                                     uint64_t *session, struct rpc_result *result)
{
    Godwit__V1__TrackRequest request = GODWIT__V1__TRACK_REQUEST__INIT;
    request.session_id = new_session ? 0 : *session;
    request.new_session = new_session;
    Godwit__V1__TrackResponse *reply = (Godwit__V1__TrackResponse *)control_call(
        client, "Track", &request.base, &godwit__v1__track_response__descriptor, result);
    if (!reply)
        return result->status;
    client->session = *session = reply->session_id;
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return GRPC_STATUS_OK;
}

grpc_status_code seeder_client_digest(struct seeder_client *client, const char *image_id,
                                      uint64_t offset, uint64_t length, uint64_t *digests, size_t n,
                                      struct rpc_result *result)
{
    Godwit__V1__DigestRequest request = GODWIT__V1__DIGEST_REQUEST__INIT;
    request.offset = offset;
    request.length = length;
    request.image_id = (char *)image_id;
    ProtobufCMessage *message;
    /* The seeder reads and hashes up to 256 MiB: longer than a control call. */
    if (rpc_call(control_channel(client), "/godwit.v1.Seeder/Digest", &request.base,
                 &godwit__v1__digest_response__descriptor, &message, DIGEST_TIMEOUT_MS,
                 result) != GRPC_STATUS_OK)
        return result->status;
    Godwit__V1__DigestResponse *reply = (Godwit__V1__DigestResponse *)message;
    if (reply->n_chunk_digests != n ||
        reply->kind != GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64) {
        result->status = GRPC_STATUS_INTERNAL;
        snprintf(result->message, sizeof result->message,
                 "a Digest reply with %zu digests of kind %d, not %zu XXH3-64",
                 reply->n_chunk_digests, (int)reply->kind, n);
    } else {
        memcpy(digests, reply->chunk_digests, n * sizeof *digests);
    }
    protobuf_c_message_free_unpacked(message, NULL);
    return result->status;
}

grpc_status_code seeder_client_complete(struct seeder_client *client, struct rpc_result *result)
{
    Godwit__V1__CompleteRequest request = GODWIT__V1__COMPLETE_REQUEST__INIT;
    request.session_id = client->session;
    return status_call(client, "Complete", &request.base,
                       &godwit__v1__complete_response__descriptor, result);
}

/* The zero ranges of DATA are ascending, disjoint and inside READ's range,
 * and the data is the rest of it. */
static bool zeros_fit(const struct seeder_data *data, const struct seeder_read *read)
{
    uint64_t next = read->offset, end = read->offset + read->length, zero_bytes = 0;
    for (size_t i = 0; i < data->n_zeros; i++) {
        const struct wire_zero_range *z = &data->zeros[i];
        if (z->offset < next || z->offset >= end || z->length == 0 || z->length > end - z->offset)
            return false;
        next = z->offset + z->length, zero_bytes += z->length;
    }
    return data->length + zero_bytes == read->length;
}

/* Decodes the COMPRESSED bytes of data of DATA (data->length bytes once
 * decoded) into data->decoded; -1 with GRPC_STATUS_INTERNAL and a sentence
 * in RESULT if they do not decode to exactly that. */
static int decode_data(struct seeder_data *data, uint64_t compressed, struct rpc_result *result)
{
    /* A piece per slice of the reply at most. */
    struct iovec *iov = calloc(data->reply.count ? data->reply.count : 1, sizeof *iov);
    data->decoded = malloc(data->length ? data->length : 1);
    int n = iov && data->decoded ? rpc_response_iov(&data->reply, data->at, (size_t)compressed, iov,
                                                    (int)data->reply.count)
                                 : -1;
    int r = n < 0 ? -1 : decompress_iov(iov, n, data->decoded, data->length);
    int err = n < 0 ? ENOMEM : errno;
    free(iov);
    if (r == 0)
        return 0;
    result->status = GRPC_STATUS_INTERNAL;
    snprintf(result->message, sizeof result->message,
             "a ReadAt reply whose compressed data does not decode to its %zu bytes (%s)",
             data->length, strerror(err));
    return -1;
}

/* Feeds LENGTH bytes of REPLY from POS (in the raw reply) to SUM, slice by
 * slice. */
static void feed_reply(struct read_checksum *sum, const struct rpc_response *reply, size_t pos,
                       size_t length)
{
    for (size_t i = 0, start = 0; i < reply->count && length > 0; i++) {
        size_t len = GRPC_SLICE_LENGTH(reply->slices[i]);
        if (pos < start + len) {
            size_t skip = pos - start, take = len - skip < length ? len - skip : length;
            read_checksum_data(sum, GRPC_SLICE_START_PTR(reply->slices[i]) + skip, take);
            pos += take, length -= take;
        }
        start += len;
    }
}

/* Feeds LENGTH bytes of DATA's data from POS to SUM: decoded, or in the
 * reply's slices. */
static void feed_data(struct read_checksum *sum, const struct seeder_data *data, size_t pos,
                      size_t length)
{
    if (data->decoded)
        read_checksum_data(sum, data->decoded + pos, length);
    else
        feed_reply(sum, &data->reply, data->at + pos, length);
}

/* The checksum of DATA's logical bytes (zeros_fit holds): the data up to
 * each zero range, the range as zeroes, the rest of the data. */
static uint64_t logical_checksum(const struct seeder_data *data, const struct seeder_read *read)
{
    struct read_checksum sum;
    read_checksum_begin(&sum);
    uint64_t next = read->offset;
    size_t pos = 0; /* in the data */
    for (size_t i = 0; i < data->n_zeros; i++) {
        size_t before = (size_t)(data->zeros[i].offset - next);
        feed_data(&sum, data, pos, before);
        read_checksum_zeros(&sum, data->zeros[i].length);
        pos += before, next = data->zeros[i].offset + data->zeros[i].length;
    }
    feed_data(&sum, data, pos, data->length - pos);
    return read_checksum_end(&sum);
}

/* With READ's checksum asked for: the reply's checksum must be there and
 * be that of DATA's logical bytes; else RESULT says INTERNAL or DATA_LOSS. */
static void verify_checksum(const struct seeder_data *data, const struct seeder_read *read,
                            const struct wire_read_at_meta *meta, struct rpc_result *result)
{
    if (meta->checksum_kind != WIRE_CHECKSUM_XXH3_64) {
        result->status = GRPC_STATUS_INTERNAL;
        snprintf(result->message, sizeof result->message,
                 "a ReadAt reply without the checksum asked for");
    } else if (logical_checksum(data, read) != meta->checksum) {
        result->status = GRPC_STATUS_DATA_LOSS;
        snprintf(result->message, sizeof result->message,
                 "a ReadAt reply whose bytes do not match its checksum");
    }
}

/* Checks the decoded reply in DATA against READ (and decodes compressed
 * data); a wrong shape gives GRPC_STATUS_INTERNAL in RESULT. */
static grpc_status_code check_reply(struct seeder_data *data, const struct seeder_read *read,
                                    bool asked, struct rpc_result *result)
{
    uint64_t length;
    struct wire_read_at_meta meta;
    int r =
        wire_read_at_decode(&data->reply, &data->at, &length, &data->zeros, &data->n_zeros, &meta);
    bool encoded = r == 0 && meta.encoding != WIRE_ENCODING_NONE;
    if (encoded && (!asked || meta.encoding != WIRE_ENCODING_ZSTD))
        r = -1; /* an encoding not asked for */
    data->length = (size_t)(encoded ? meta.decoded_length : length);
    if (r < 0 || data->length > read->length || !zeros_fit(data, read)) {
        result->status = GRPC_STATUS_INTERNAL;
        snprintf(result->message, sizeof result->message, "a ReadAt reply of the wrong shape");
    } else if (encoded) {
        decode_data(data, length, result); /* sets result->status if it fails */
    }
    if (result->status == GRPC_STATUS_OK && read->checksum)
        verify_checksum(data, read, &meta, result);
    if (result->status != GRPC_STATUS_OK)
        seeder_data_free(data);
    return result->status;
}

grpc_status_code seeder_client_read_at(struct seeder_client *client, const struct seeder_read *read,
                                       struct seeder_data *data, struct rpc_result *result)
{
    Godwit__V1__ReadAtRequest request = GODWIT__V1__READ_AT_REQUEST__INIT;
    request.offset = read->offset;
    request.length = read->length;
    request.image_id = (char *)read->image_id;
    request.allow_zero_ranges = true;
    bool compress = compress_choice_wanted(&client->compress);
    if (compress)
        request.accept_encoding = GODWIT__V1__ENCODING__ENCODING_ZSTD;
    request.want_checksum = read->checksum;
    *data = (struct seeder_data){0};
    /* An on-demand read skips the bulk connections: it goes ahead of
     * background pulls on the wire, not only in the queue. */
    struct rpc_channel *channel =
        read->on_demand ? control_channel(client) : bulk_channel(client, read->lane);
    /* The bucket takes the length asked for before the call and settles to
     * the reply's size after it: zero ranges cost nothing. */
    if (!read->paid)
        rate_limit_acquire(&client->bandwidth, read->length, read->on_demand);
    rpc_call_raw(channel, "/godwit.v1.Seeder/ReadAt", &request.base, &data->reply, READ_TIMEOUT_MS,
                 result);
    uint64_t end = now_us();
    rate_limit_settle(&client->bandwidth, read->length, data->reply.length);
    if (result->status != GRPC_STATUS_OK)
        return result->status;
    compress_choice_note(&client->compress, data->reply.length, compress, end);
    return check_reply(data, read, compress, result);
}

bool seeder_client_compressing(struct seeder_client *client)
{
    return compress_choice_wanted(&client->compress);
}

int seeder_data_iov(const struct seeder_data *data, size_t offset, size_t length, struct iovec *iov,
                    int max)
{
    if (offset > data->length || length > data->length - offset)
        return -1;
    if (data->decoded) {
        if (max < 1)
            return -1;
        iov[0] = (struct iovec){data->decoded + offset, length};
        return 1;
    }
    return rpc_response_iov(&data->reply, data->at + offset, length, iov, max);
}

void seeder_data_free(struct seeder_data *data)
{
    rpc_response_free(&data->reply);
    free(data->decoded);
    free(data->zeros);
    *data = (struct seeder_data){0};
}

void seeder_client_take_bandwidth(struct seeder_client *client, uint64_t bytes)
{
    rate_limit_acquire(&client->bandwidth, bytes, false);
}

void seeder_client_refund_bandwidth(struct seeder_client *client, uint64_t bytes)
{
    rate_limit_settle(&client->bandwidth, bytes, 0);
}

uint64_t seeder_client_throttled_us(struct seeder_client *client)
{
    return rate_limit_throttled_us(&client->bandwidth);
}

uint64_t seeder_client_forfeited_bytes(struct seeder_client *client)
{
    return rate_limit_forfeited_bytes(&client->bandwidth);
}
