/* SPDX-License-Identifier: MIT */
/* gRPC server reflection (grpc.reflection.v1alpha and v1; their messages
 * are the same on the wire, so one implementation serves both): lists the
 * services and answers file_by_filename and file_containing_symbol with the
 * file and its transitive imports, taken from the FileDescriptorSet that
 * the build embeds (api/descriptor-set.h). Each stream is a loop of one
 * read and one write at a time. */
#include "internal.h"

#include "cleanup.h"
#include "descriptor-set.h"
#include "log.h"
#include "proto-wire.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct proto_file {
    struct bytes raw; /* the serialized FileDescriptorProto */
    char *name;
    char **deps;
    size_t n_deps;
};

struct symbol {
    char *name; /* fully qualified, e.g. "godwit.v1.Seeder.ReadAt" */
    size_t file;
};

/* Built once at start, read-only afterwards. */
struct reflection_index {
    struct proto_file *files;
    size_t n_files;
    struct symbol *symbols;
    size_t n_symbols, symbols_room;
};

/* PREFIX.NAME (or NAME alone) on the heap; NULL (ENOMEM) if it does not fit. */
static char *join(const char *prefix, struct bytes name)
{
    size_t plen = strlen(prefix);
    char *out = malloc(plen + name.len + 2);
    if (!out)
        return NULL;
    memcpy(out, prefix, plen);
    size_t at = plen;
    if (plen)
        out[at++] = '.';
    memcpy(out + at, name.data, name.len);
    out[at + name.len] = '\0';
    return out;
}

/* Adds NAME (taking it; NULL from a failed join) for FILE; -1 (ENOMEM). */
static int add_symbol(struct reflection_index *index, char *name, size_t file)
{
    if (!name)
        return errno = ENOMEM, -1;
    if (index->n_symbols == index->symbols_room) {
        size_t room = index->symbols_room ? 2 * index->symbols_room : 64;
        struct symbol *more = realloc(index->symbols, room * sizeof *more);
        if (!more) {
            free(name);
            return errno = ENOMEM, -1;
        }
        index->symbols = more, index->symbols_room = room;
    }
    index->symbols[index->n_symbols++] = (struct symbol){name, file};
    return 0;
}

/* The name (field 1) of a DescriptorProto, EnumDescriptorProto, ... */
static struct bytes name_of(struct bytes message)
{
    struct field f;
    while (wire_next(&message, &f) == 0)
        if (f.number == 1 && f.type == 2)
            return f.value;
    return (struct bytes){(const uint8_t *)"", 0};
}

/* Indexes a message or service and what it contains: nested messages (3)
 * and enums (4) of messages, methods (2) of services. */
static int index_scope(struct reflection_index *index, const char *prefix, struct bytes body,
                       size_t file, bool is_service)
{
    char *scope = join(prefix, name_of(body));
    if (add_symbol(index, scope, file) < 0)
        return -1;
    struct field f;
    int r;
    while ((r = wire_next(&body, &f)) == 0) {
        if (f.type != 2)
            continue;
        if (is_service && f.number == 2)
            r = add_symbol(index, join(scope, name_of(f.value)), file);
        else if (!is_service && f.number == 3)
            r = index_scope(index, scope, f.value, file, false);
        else if (!is_service && f.number == 4)
            r = add_symbol(index, join(scope, name_of(f.value)), file);
        if (r < 0)
            return -1;
    }
    return r < 0 ? -1 : 0;
}

/* Adds DEP (taking it; NULL from a failed join) to PF's imports; -1 (ENOMEM). */
static int add_dep(struct proto_file *pf, char *dep)
{
    char **more = dep ? realloc(pf->deps, (pf->n_deps + 1) * sizeof *more) : NULL;
    if (!more) {
        free(dep);
        return errno = ENOMEM, -1;
    }
    pf->deps = more;
    pf->deps[pf->n_deps++] = dep;
    return 0;
}

/* Indexes one FileDescriptorProto; -1 with errno ENOMEM, or EINVAL if it
 * does not parse. */
static int index_file(struct reflection_index *index, struct bytes raw)
{
    size_t file = index->n_files++;
    struct proto_file *pf = &index->files[file];
    pf->raw = raw;
    char *package = strdup("");
    struct field f;
    int r = package ? 0 : -1;
    struct bytes body = raw;
    while (r == 0 && (r = wire_next(&body, &f)) == 0 && f.type == 2) {
        if (f.number == 1)
            r = (pf->name = join("", f.value)) ? 0 : -1;
        else if (f.number == 2)
            free(package), r = (package = join("", f.value)) ? 0 : -1;
        else if (f.number == 3)
            r = add_dep(pf, join("", f.value));
        else if (f.number == 4 || f.number == 6)
            r = index_scope(index, package, f.value, file, f.number == 6);
        else if (f.number == 5)
            r = add_symbol(index, join(package, name_of(f.value)), file);
    }
    free(package);
    if (r == 0 && !pf->name)
        errno = EINVAL, r = -1; /* a file without a name */
    return r < 0 ? -1 : 0;
}

int reflection_register(struct rpc_server *server)
{
    static const char *paths[2] = {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                   "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"};
    for (int i = 0; i < 2; i++)
        server->reflection_methods[i] =
            grpc_server_register_method(server->server, paths[i], NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    struct reflection_index *index = calloc(1, sizeof *index);
    server->reflection = index;
    if (!index)
        return errno = ENOMEM, -1;
    struct bytes set = {godwit_descriptor_set, godwit_descriptor_set_len};
    struct field f;
    size_t count = 0;
    for (struct bytes scan = set; wire_next(&scan, &f) == 0;)
        count++;
    index->files = calloc(count ? count : 1, sizeof *index->files);
    if (!index->files)
        return errno = ENOMEM, -1;
    int r;
    while ((r = wire_next(&set, &f)) == 0) {
        if (f.number != 1 || f.type != 2)
            return errno = EINVAL, -1;
        if (index_file(index, f.value) < 0)
            return -1;
    }
    return r < 0 ? (errno = EINVAL, -1) : 0;
}

void reflection_free(struct rpc_server *server)
{
    struct reflection_index *index = server->reflection;
    if (!index)
        return;
    for (size_t i = 0; i < index->n_files; i++) {
        for (size_t j = 0; j < index->files[i].n_deps; j++)
            free(index->files[i].deps[j]);
        free(index->files[i].deps);
        free(index->files[i].name);
    }
    for (size_t i = 0; i < index->n_symbols; i++)
        free(index->symbols[i].name);
    free(index->symbols);
    free(index->files);
    free(index);
}

static long find_file(const struct reflection_index *index, const char *name)
{
    for (size_t i = 0; i < index->n_files; i++)
        if (strcmp(index->files[i].name, name) == 0)
            return (long)i;
    return -1;
}

static long find_symbol(const struct reflection_index *index, const char *name)
{
    for (size_t i = 0; i < index->n_symbols; i++)
        if (strcmp(index->symbols[i].name, name) == 0)
            return (long)index->symbols[i].file;
    return -1;
}

/* Marks FILE and, recursively, its imports in CHOSEN. */
static void choose(const struct reflection_index *index, long file, bool *chosen)
{
    if (file < 0 || chosen[file])
        return;
    chosen[file] = true;
    for (size_t i = 0; i < index->files[file].n_deps; i++)
        choose(index, find_file(index, index->files[file].deps[i]), chosen);
}

/* Fills RESPONSE with FILE and its imports (the file first); -1 (ENOMEM). */
static int answer_files(const struct reflection_index *index, long file,
                        Grpc__Reflection__V1alpha__ServerReflectionResponse *response,
                        Grpc__Reflection__V1alpha__FileDescriptorResponse *files)
{
    CLEANUP_FREE bool *chosen = calloc(index->n_files, sizeof *chosen);
    files->file_descriptor_proto = calloc(index->n_files, sizeof(ProtobufCBinaryData));
    if (!chosen || !files->file_descriptor_proto)
        return errno = ENOMEM, -1;
    choose(index, file, chosen);
    files->file_descriptor_proto[files->n_file_descriptor_proto++] =
        (ProtobufCBinaryData){index->files[file].raw.len, (uint8_t *)index->files[file].raw.data};
    for (size_t i = 0; i < index->n_files; i++)
        if (chosen[i] && (long)i != file)
            files->file_descriptor_proto[files->n_file_descriptor_proto++] =
                (ProtobufCBinaryData){index->files[i].raw.len, (uint8_t *)index->files[i].raw.data};
    response->message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    response->file_descriptor_response = files;
    return 0;
}

/* Scratch space for one answer; freed after packing. */
struct answer {
    Grpc__Reflection__V1alpha__ServerReflectionResponse response;
    Grpc__Reflection__V1alpha__FileDescriptorResponse files;
    Grpc__Reflection__V1alpha__ListServiceResponse list;
    Grpc__Reflection__V1alpha__ServiceResponse *services;
    Grpc__Reflection__V1alpha__ServiceResponse **service_ptrs;
    Grpc__Reflection__V1alpha__ErrorResponse error;
};

/* Fills A with the list of services; -1 (ENOMEM). */
static int answer_list(struct rpc_server *server, struct answer *a)
{
    static const char *builtin[] = {"grpc.health.v1.Health",
                                    "grpc.reflection.v1alpha.ServerReflection",
                                    "grpc.reflection.v1.ServerReflection"};
    size_t n = server->n_services + 3;
    a->services = calloc(n, sizeof *a->services);
    a->service_ptrs = calloc(n, sizeof *a->service_ptrs);
    if (!a->services || !a->service_ptrs)
        return errno = ENOMEM, -1;
    for (size_t i = 0; i < n; i++) {
        grpc__reflection__v1alpha__service_response__init(&a->services[i]);
        a->services[i].name = (char *)(i < server->n_services ? server->services[i].name
                                                              : builtin[i - server->n_services]);
        a->service_ptrs[i] = &a->services[i];
    }
    a->list.n_service = n;
    a->list.service = a->service_ptrs;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    a->response.list_services_response = &a->list;
    return 0;
}

/* An ErrorResponse inside the stream: its code is the status for ERR. */
static void answer_error(struct answer *a, int err, const char *message)
{
    a->error.error_code = (int32_t)rpc_status_from_errno(err);
    a->error.error_message = (char *)message;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->response.error_response = &a->error;
}

static grpc_byte_buffer *answer(struct rpc_server *server,
                                Grpc__Reflection__V1alpha__ServerReflectionRequest *request)
{
    struct answer a = {.response = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT,
                       .files = GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT,
                       .list = GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT,
                       .error = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT};
    a.response.valid_host = request->host;
    a.response.original_request = request;
    long file = -1;
    int r = 0;
    switch (request->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        r = answer_list(server, &a);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(server->reflection, request->file_by_filename);
        goto files;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = find_symbol(server->reflection, request->file_containing_symbol);
    files:
        if (file >= 0)
            r = answer_files(server->reflection, file, &a.response, &a.files);
        else
            answer_error(&a, ENOENT, "not found");
        break;
    default:
        answer_error(&a, ENOENT, "no extensions are defined");
        break;
    }
    if (r < 0)
        answer_error(&a, ENOMEM, "out of memory");
    grpc_byte_buffer *out = rpc_pack(&a.response.base);
    free(a.files.file_descriptor_proto);
    free(a.services);
    free(a.service_ptrs);
    return out;
}

/* One reflection stream. */
struct reflection_call {
    struct rpc_tag tag;
    struct rpc_call_context ctx; /* ctx.in: the last request; ctx.out: its answer */
    int version;                 /* 0 v1alpha, 1 v1 */
};

static void arm_stream(struct rpc_server *server, int version);

/* Ends the stream with ERR (0: OK) and DETAILS, and frees it. */
static void stream_end(struct reflection_call *c, int err, const char *details)
{
    rpc_finish_call(c->ctx.call, err, details, false);
    c->ctx.call = NULL; /* rpc_finish_call owns it now */
    rpc_call_free(c, &c->ctx);
}

static void stream_closed(struct rpc_tag *tag, bool ok)
{
    struct reflection_call *c = (struct reflection_call *)tag;
    (void)ok;
    rpc_call_free(c, &c->ctx);
}

/* Sends the answer to the message in c->ctx.in (if any) and reads the next. */
static void stream_step(struct rpc_tag *tag, bool ok)
{
    struct reflection_call *c = (struct reflection_call *)tag;
    if (c->ctx.out)
        grpc_byte_buffer_destroy(c->ctx.out);
    c->ctx.out = NULL;
    if (!ok || !c->ctx.in) { /* the client is done (or gone): end with OK */
        stream_end(c, 0, NULL);
        return;
    }
    Grpc__Reflection__V1alpha__ServerReflectionRequest *request = (void *)rpc_unpack(
        c->ctx.in, &grpc__reflection__v1alpha__server_reflection_request__descriptor);
    grpc_byte_buffer_destroy(c->ctx.in);
    c->ctx.in = NULL;
    if (!request) {
        stream_end(c, EINVAL, "not a ServerReflectionRequest");
        return;
    }
    c->ctx.out = answer(c->ctx.server, request);
    protobuf_c_message_free_unpacked(&request->base, NULL);
    grpc_op ops[2] = {{.op = GRPC_OP_SEND_MESSAGE}, {.op = GRPC_OP_RECV_MESSAGE}};
    ops[0].data.send_message.send_message = c->ctx.out;
    ops[1].data.recv_message.recv_message = &c->ctx.in;
    if (grpc_call_start_batch(c->ctx.call, ops, 2, &c->tag, NULL) != GRPC_CALL_OK)
        stream_closed(&c->tag, false);
}

static void stream_arrived(struct rpc_tag *tag, bool ok)
{
    struct reflection_call *c = (struct reflection_call *)tag;
    if (!ok) {
        rpc_call_free(c, &c->ctx);
        return;
    }
    arm_stream(c->ctx.server, c->version);
    grpc_op ops[2] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_RECV_MESSAGE}};
    ops[1].data.recv_message.recv_message = &c->ctx.in;
    c->tag.fn = stream_step;
    /* The first completion carries the first request; there is no answer
     * to send yet, which stream_step handles since c->ctx.out is NULL. */
    if (grpc_call_start_batch(c->ctx.call, ops, 2, &c->tag, NULL) != GRPC_CALL_OK)
        rpc_call_free(c, &c->ctx);
}

static void arm_stream(struct rpc_server *server, int version)
{
    if (atomic_load(&server->stopping))
        return;
    struct reflection_call *c = calloc(1, sizeof *c);
    if (!c) {
        log_error(server->log, "cannot wait for a reflection stream: out of memory");
        return;
    }
    c->tag.fn = stream_arrived;
    c->version = version;
    if (!rpc_call_arm(&c->ctx, server, server->reflection_methods[version], false, &c->tag))
        rpc_call_free(c, &c->ctx);
}

void reflection_arm(struct rpc_server *server)
{
    for (int version = 0; version < 2; version++)
        for (int i = 0; i < 2; i++)
            arm_stream(server, version);
}
