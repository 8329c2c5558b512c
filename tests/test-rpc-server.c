/* SPDX-License-Identifier: MIT */
/* Test of the gRPC layer with an in-process server: unary replies and
 * status codes, undecodable requests, unknown methods, big messages,
 * concurrency, one TCP connection per channel, health Check and Watch,
 * reflection as grpcurl uses it (list, file_containing_symbol, then a call
 * built only from the descriptors it returned), and a graceful stop that
 * lets a call in flight finish. */
#include "godwit/v1/seeder.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "proto-wire.h"
#include "rpc-client.h"
#include "rpc-server.h"
#include "rpc-stream.h"
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static void handle_info(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    (void)opaque, (void)request;
    Godwit__V1__InfoResponse response = GODWIT__V1__INFO_RESPONSE__INIT;
    response.size = 42;
    response.image_id = "test";
    rpc_reply_message(reply, &response.base);
}

static void handle_read_at(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    const Godwit__V1__ReadAtRequest *request = (const void *)message;
    (void)opaque;
    Godwit__V1__ReadAtResponse response = GODWIT__V1__READ_AT_RESPONSE__INIT;
    response.data.len = request->length;
    response.data.data = malloc(request->length ? request->length : 1);
    memset(response.data.data, 'x', request->length);
    rpc_reply_message(reply, &response.base);
    free(response.data.data);
}

static void handle_sync(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    (void)opaque, (void)request;
    rpc_reply_errno(reply, EBUSY, "nope");
}

static void handle_track(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply)
{
    (void)opaque, (void)request;
    usleep(300000); /* a slow call, to be in flight at stop */
    Godwit__V1__TrackResponse response = GODWIT__V1__TRACK_RESPONSE__INIT;
    rpc_reply_message(reply, &response.base);
}

static const struct rpc_method methods[] = {
    {"Info", &godwit__v1__info_request__descriptor, handle_info},
    {"ReadAt", &godwit__v1__read_at_request__descriptor, handle_read_at},
    {"Sync", &godwit__v1__sync_request__descriptor, handle_sync},
    {"Track", &godwit__v1__track_request__descriptor, handle_track},
};
static const struct rpc_service service = {"godwit.v1.Seeder", methods, 4, NULL};

static char target[64];
static struct rpc_channel *ch_for_stop; /* the channel slow_call uses */

static struct rpc_channel *open_channel(void)
{
    char err[256];
    struct rpc_channel_config config = {.target = target, .max_message = 20 << 20};
    struct rpc_channel *ch = rpc_channel_open(&config, err, sizeof err);
    CHECK(ch, "open: %s", err);
    return ch;
}

static grpc_status_code info(struct rpc_channel *ch, struct rpc_result *result)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *response;
    grpc_status_code status =
        rpc_call(ch, "/godwit.v1.Seeder/Info", &request.base,
                 &godwit__v1__info_response__descriptor, &response, 5000, result);
    if (response) {
        CHECK(((Godwit__V1__InfoResponse *)response)->size == 42, "Info size");
        protobuf_c_message_free_unpacked(response, NULL);
    }
    return status;
}

static void test_unary(struct rpc_channel *ch)
{
    struct rpc_result result;
    CHECK(info(ch, &result) == GRPC_STATUS_OK, "Info: %s", result.message);
    Godwit__V1__SyncRequest sync = GODWIT__V1__SYNC_REQUEST__INIT;
    ProtobufCMessage *response;
    CHECK(rpc_call(ch, "/godwit.v1.Seeder/Sync", &sync.base, &godwit__v1__sync_response__descriptor,
                   &response, 5000, &result) == GRPC_STATUS_FAILED_PRECONDITION &&
              strcmp(result.message, "nope") == 0 && !response,
          "Sync status %d '%s'", result.status, result.message);
    /* Field 1 (offset, a varint) arrives length-delimited: not a ReadAtRequest. */
    Grpc__Reflection__V1alpha__ServerReflectionRequest bad =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    bad.host = "not a number";
    CHECK(rpc_call(ch, "/godwit.v1.Seeder/ReadAt", &bad.base,
                   &godwit__v1__read_at_response__descriptor, &response, 5000,
                   &result) == GRPC_STATUS_INVALID_ARGUMENT,
          "undecodable request: status %d", result.status);
    CHECK(rpc_call(ch, "/godwit.v1.Seeder/Rewind", &sync.base,
                   &godwit__v1__sync_response__descriptor, &response, 5000,
                   &result) == GRPC_STATUS_UNIMPLEMENTED,
          "unknown method: status %d", result.status);
    CHECK(info(ch, &result) == GRPC_STATUS_OK, "still serving: %s", result.message);

    Godwit__V1__ReadAtRequest big = GODWIT__V1__READ_AT_REQUEST__INIT;
    big.length = 16 << 20;
    CHECK(rpc_call(ch, "/godwit.v1.Seeder/ReadAt", &big.base,
                   &godwit__v1__read_at_response__descriptor, &response, 10000,
                   &result) == GRPC_STATUS_OK,
          "16 MiB reply: %s", result.message);
    CHECK(((Godwit__V1__ReadAtResponse *)response)->data.len == 16u << 20, "16 MiB length");
    protobuf_c_message_free_unpacked(response, NULL);
}

/* ESTABLISHED TCP connections to PORT (gRPC uses v4-mapped IPv6 sockets,
 * so both tables count). */
static int connections_to(int port)
{
    static const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int count = 0;
    for (int t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            unsigned remote_port, state;
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %x", &remote_port, &state) ==
                    2 &&
                state == 1 && (int)remote_port == port)
                count++;
        }
        if (f)
            fclose(f);
    }
    return count;
}

struct caller_arg {
    struct rpc_channel *ch;
    int failures;
};

static void *caller(void *arg)
{
    struct caller_arg *a = arg;
    struct rpc_result result;
    for (int i = 0; i < 50; i++)
        if (info(a->ch, &result) != GRPC_STATUS_OK)
            a->failures++;
    return NULL;
}

static void test_channels(int port)
{
    int before = connections_to(port);
    struct rpc_channel *channels[4];
    struct rpc_result result;
    for (int i = 0; i < 4; i++) {
        channels[i] = open_channel();
        CHECK(info(channels[i], &result) == GRPC_STATUS_OK, "Info on channel %d", i);
    }
    CHECK(connections_to(port) - before == 4, "4 channels made %d TCP connections",
          connections_to(port) - before);
    pthread_t threads[16];
    struct caller_arg args[16];
    for (int i = 0; i < 16; i++) {
        args[i] = (struct caller_arg){channels[i % 4], 0};
        pthread_create(&threads[i], NULL, caller, &args[i]);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].failures == 0, "caller %d: %d failures", i, args[i].failures);
    }
    for (int i = 0; i < 4; i++)
        rpc_channel_close(channels[i]);
}

static int check_health(struct rpc_channel *ch, const char *name, int *serving)
{
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    request.service = (char *)name;
    ProtobufCMessage *response;
    struct rpc_result result;
    grpc_status_code status =
        rpc_call(ch, "/grpc.health.v1.Health/Check", &request.base,
                 &grpc__health__v1__health_check_response__descriptor, &response, 5000, &result);
    if (response) {
        *serving = ((Grpc__Health__V1__HealthCheckResponse *)response)->status;
        protobuf_c_message_free_unpacked(response, NULL);
    }
    return status;
}

static int watch_next(struct test_stream *watch)
{
    ProtobufCMessage *m =
        test_stream_recv(watch, &grpc__health__v1__health_check_response__descriptor, 5000);
    CHECK(m, "Watch ended early");
    int status = ((Grpc__Health__V1__HealthCheckResponse *)m)->status;
    protobuf_c_message_free_unpacked(m, NULL);
    return status;
}

static void test_health(struct rpc_server *server, struct rpc_channel *ch)
{
    int serving = -1;
    CHECK(check_health(ch, "", &serving) == GRPC_STATUS_OK && serving == 1, "Check \"\"");
    CHECK(check_health(ch, "godwit.v1.Seeder", &serving) == GRPC_STATUS_OK && serving == 1,
          "Check godwit.v1.Seeder");
    CHECK(check_health(ch, "no.Such", &serving) == GRPC_STATUS_NOT_FOUND, "Check unknown");

    struct test_stream watch;
    test_stream_open(&watch, target, "/grpc.health.v1.Health/Watch");
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    request.service = "";
    test_stream_send(&watch, &request.base);
    test_stream_send(&watch, NULL);
    CHECK(watch_next(&watch) == 1, "Watch starts SERVING");
    rpc_server_set_serving(server, false);
    CHECK(watch_next(&watch) == 2, "Watch sees NOT_SERVING");
    CHECK(check_health(ch, "", &serving) == GRPC_STATUS_OK && serving == 2, "Check NOT_SERVING");
    rpc_server_set_serving(server, true);
    CHECK(watch_next(&watch) == 1, "Watch sees SERVING again");
    test_stream_close(&watch);
}

/* Returns the serialized FileDescriptorProtos for SYMBOL over reflection. */
static Grpc__Reflection__V1alpha__ServerReflectionResponse *reflect(struct test_stream *s,
                                                                    const char *symbol, bool list)
{
    Grpc__Reflection__V1alpha__ServerReflectionRequest request =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    if (list) {
        request.message_request_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
        request.list_services = "*";
    } else {
        request.message_request_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
        request.file_containing_symbol = (char *)symbol;
    }
    test_stream_send(s, &request.base);
    ProtobufCMessage *m = test_stream_recv(
        s, &grpc__reflection__v1alpha__server_reflection_response__descriptor, 5000);
    CHECK(m, "no reflection answer");
    return (Grpc__Reflection__V1alpha__ServerReflectionResponse *)m;
}

/* Finds a sub-message by name in field NUMBER of MESSAGE. */
static bool find_named(struct bytes message, uint32_t number, const char *name, struct bytes *out)
{
    struct field f;
    while (wire_next(&message, &f) == 0) {
        if (f.number != number || f.type != 2)
            continue;
        struct bytes inner = f.value;
        struct field g;
        while (wire_next(&inner, &g) == 0)
            if (g.number == 1 && g.type == 2 && g.value.len == strlen(name) &&
                memcmp(g.value.data, name, g.value.len) == 0) {
                *out = f.value;
                return true;
            }
    }
    return false;
}

/* The string in field NUMBER of MESSAGE. */
static char *string_field(struct bytes message, uint32_t number)
{
    struct field f;
    while (wire_next(&message, &f) == 0)
        if (f.number == number && f.type == 2)
            return strndup((const char *)f.value.data, f.value.len);
    return NULL;
}

/* The field number of the field called NAME in a DescriptorProto. */
static uint64_t field_number(struct bytes message_type, const char *name)
{
    struct bytes field_proto;
    CHECK(find_named(message_type, 2, name, &field_proto), "no field %s", name);
    struct field f;
    while (wire_next(&field_proto, &f) == 0)
        if (f.number == 3 && f.type == 0)
            return f.varint;
    return 0;
}

static void test_reflection(const char *method, struct rpc_channel *ch)
{
    struct test_stream s;
    test_stream_open(&s, target, method);
    Grpc__Reflection__V1alpha__ServerReflectionResponse *r = reflect(&s, NULL, true);
    CHECK(r->list_services_response, "list_services answer");
    bool seeder = false, health = false;
    for (size_t i = 0; i < r->list_services_response->n_service; i++) {
        seeder |= strcmp(r->list_services_response->service[i]->name, "godwit.v1.Seeder") == 0;
        health |= strcmp(r->list_services_response->service[i]->name, "grpc.health.v1.Health") == 0;
    }
    CHECK(seeder && health, "list lacks our services");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    r = reflect(&s, "godwit.v1.Seeder", false);
    CHECK(r->file_descriptor_response && r->file_descriptor_response->n_file_descriptor_proto >= 1,
          "file_containing_symbol answer");
    ProtobufCBinaryData file = r->file_descriptor_response->file_descriptor_proto[0];
    struct bytes fd = {file.data, file.len}, svc, rpc, msg;
    CHECK(find_named(fd, 6, "Seeder", &svc) && find_named(svc, 2, "Digest", &rpc),
          "descriptor has Seeder.Digest (what grpcurl lists)");
    CHECK(find_named(fd, 6, "Seeder", &svc) && find_named(svc, 2, "ReadAt", &rpc),
          "descriptor has Seeder.ReadAt");
    char *input = string_field(rpc, 2);
    CHECK(input && strcmp(input, ".godwit.v1.ReadAtRequest") == 0, "input type %s", input);
    CHECK(find_named(fd, 4, input + strlen(".godwit.v1."), &msg), "message %s", input);
    uint64_t offset_field = field_number(msg, "offset"), length_field = field_number(msg, "length");
    free(input);

    /* Build the request from those field numbers alone, as grpcurl does from JSON. */
    uint8_t raw[] = {(uint8_t)(offset_field << 3), 0, (uint8_t)(length_field << 3), 16};
    ProtobufCMessage *request =
        protobuf_c_message_unpack(&godwit__v1__read_at_request__descriptor, NULL, sizeof raw, raw);
    ProtobufCMessage *response;
    struct rpc_result result;
    CHECK(rpc_call(ch, "/godwit.v1.Seeder/ReadAt", request,
                   &godwit__v1__read_at_response__descriptor, &response, 5000,
                   &result) == GRPC_STATUS_OK &&
              ((Godwit__V1__ReadAtResponse *)response)->data.len == 16,
          "call built from reflection: %s", result.message);
    protobuf_c_message_free_unpacked(request, NULL);
    protobuf_c_message_free_unpacked(response, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    r = reflect(&s, "godwit.v1.Seeder.ReadAt", false);
    CHECK(r->file_descriptor_response, "method symbol resolves");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = reflect(&s, "godwit.v1.Seeder.Digest", false);
    CHECK(r->file_descriptor_response, "Seeder.Digest resolves");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = reflect(&s, "no.such.Thing", false);
    CHECK(r->error_response && r->error_response->error_code == 5, "unknown symbol NOT_FOUND");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    test_stream_send(&s, NULL);
    CHECK(!test_stream_recv(&s, &grpc__reflection__v1alpha__server_reflection_response__descriptor,
                            5000),
          "stream ends after half-close");
    test_stream_close(&s);
}

static void *slow_call(void *arg)
{
    Godwit__V1__TrackRequest request = GODWIT__V1__TRACK_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    *(int *)arg = rpc_call(ch_for_stop, "/godwit.v1.Seeder/Track", &request.base,
                           &godwit__v1__track_response__descriptor, &response, 5000, &result);
    if (response)
        protobuf_c_message_free_unpacked(response, NULL);
    return NULL;
}

/* The one errno -> status table (docs/errors.md). */
static void test_status_table(void)
{
    static const struct {
        int err;
        grpc_status_code status;
    } rows[] = {
        {0, GRPC_STATUS_OK},
        {EINVAL, GRPC_STATUS_INVALID_ARGUMENT},
        {ERANGE, GRPC_STATUS_OUT_OF_RANGE},
        {ENOSPC, GRPC_STATUS_OUT_OF_RANGE},
        {EOVERFLOW, GRPC_STATUS_OUT_OF_RANGE},
        {EBUSY, GRPC_STATUS_FAILED_PRECONDITION},
        {ESTALE, GRPC_STATUS_FAILED_PRECONDITION},
        {EAGAIN, GRPC_STATUS_UNAVAILABLE},
        {EIO, GRPC_STATUS_UNAVAILABLE},
        {ECONNREFUSED, GRPC_STATUS_UNAVAILABLE},
        {ECONNRESET, GRPC_STATUS_UNAVAILABLE},
        {ESHUTDOWN, GRPC_STATUS_UNAVAILABLE},
        {ENOENT, GRPC_STATUS_NOT_FOUND},
        {EEXIST, GRPC_STATUS_ALREADY_EXISTS},
        {EPERM, GRPC_STATUS_PERMISSION_DENIED},
        {EACCES, GRPC_STATUS_PERMISSION_DENIED},
        {ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {EUSERS, GRPC_STATUS_RESOURCE_EXHAUSTED},
        {ENOTSUP, GRPC_STATUS_UNIMPLEMENTED},
        {ENOSYS, GRPC_STATUS_UNIMPLEMENTED},
        {ETIMEDOUT, GRPC_STATUS_DEADLINE_EXCEEDED},
        {ECANCELED, GRPC_STATUS_CANCELLED},
        {EBADF, GRPC_STATUS_INTERNAL},
        {EPROTO, GRPC_STATUS_INTERNAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(rpc_status_from_errno(rows[i].err) == rows[i].status, "%s -> %d, expected %d",
              strerror(rows[i].err), (int)rpc_status_from_errno(rows[i].err), (int)rows[i].status);
}

int main(void)
{
    test_status_table();
    char err[256];
    int port;
    struct rpc_server_config config = {.listen = "127.0.0.1:0", .max_message = 20 << 20};
    struct rpc_server *server = rpc_server_start(&config, &service, 1, &port, err, sizeof err);
    CHECK(server, "start: %s", err);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    struct rpc_channel *ch = open_channel();
    test_unary(ch);
    test_channels(port);
    test_health(server, ch);
    test_reflection("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ch);
    test_reflection("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", ch);

    ch_for_stop = ch;
    int status = -1;
    pthread_t thread;
    pthread_create(&thread, NULL, slow_call, &status);
    usleep(100000);
    rpc_server_stop(server, 5000);
    pthread_join(thread, NULL);
    CHECK(status == GRPC_STATUS_OK, "the call in flight at stop got %d", status);
    rpc_channel_close(ch);
    printf("test-rpc-server: ok\n");
    return 0;
}
