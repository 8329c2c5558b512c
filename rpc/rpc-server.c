/* SPDX-License-Identifier: MIT */
/* The gRPC server core: one completion queue drained by a pool of threads;
 * unary protobuf-c methods dispatched to their handlers; unknown methods
 * answered UNIMPLEMENTED; a graceful stop. Health and reflection live in
 * health.c and reflection.c. */
#include "internal.h"

#include "log.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CALLS_ARMED_PER_METHOD = 8 };

/* What a handler answers. */
struct rpc_reply {
    bool answered;
    grpc_status_code status;
    char details[256];
    grpc_byte_buffer *payload; /* on OK */
};

/* One unary call, from the armed request to the end of its reply batch. */
struct unary_call {
    struct rpc_tag tag;
    struct rpc_call_context ctx; /* ctx.in: the request; ctx.out: the reply */
    struct rpc_registered *method;
    struct rpc_reply reply;
    int cancelled; /* RECV_CLOSE_ON_SERVER */
};

/* An unknown-method probe: a generic request_call. */
struct generic_call {
    struct rpc_tag tag;
    struct rpc_call_context ctx;
    grpc_call_details details;
};

/* A finishing batch with nothing else to do. */
struct finish_call {
    struct rpc_tag tag;
    grpc_call *call;
    int cancelled;
    char details[256];
};

void rpc_reply_message(struct rpc_reply *reply, const ProtobufCMessage *message)
{
    reply->answered = true;
    reply->status = GRPC_STATUS_OK;
    reply->payload = rpc_pack(message);
}

void rpc_reply_slice(struct rpc_reply *reply, grpc_slice payload)
{
    reply->answered = true;
    reply->status = GRPC_STATUS_OK;
    reply->payload = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
}

void rpc_reply_errno(struct rpc_reply *reply, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply->details, sizeof reply->details, fmt, ap);
    va_end(ap);
    reply->answered = true;
    reply->status = err ? rpc_status_from_errno(err) : GRPC_STATUS_INTERNAL;
}

grpc_status_code rpc_status_from_errno(int err)
{
    switch (err) {
    case 0:
        return GRPC_STATUS_OK;
    case EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case ERANGE:
    case ENOSPC:
    case EOVERFLOW:
        return GRPC_STATUS_OUT_OF_RANGE;
    case ENOENT:
        return GRPC_STATUS_NOT_FOUND;
    case EEXIST:
        return GRPC_STATUS_ALREADY_EXISTS;
    case EPERM:
    case EACCES:
        return GRPC_STATUS_PERMISSION_DENIED;
    case ENOMEM:
    case EUSERS: /* a configured limit of users (e.g. --max-sessions) */
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case ENOTSUP:
    case ENOSYS:
        return GRPC_STATUS_UNIMPLEMENTED;
    case EBUSY:  /* the call is not allowed in the current state */
    case ESTALE: /* the caller expects another image or session */
        return GRPC_STATUS_FAILED_PRECONDITION;
    case ETIMEDOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case ECANCELED:
        return GRPC_STATUS_CANCELLED;
    case EAGAIN:
    case EIO:
    case ECONNREFUSED:
    case ECONNRESET:
    case ESHUTDOWN:
        return GRPC_STATUS_UNAVAILABLE;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

static void finish_done(struct rpc_tag *tag, bool ok)
{
    struct finish_call *f = (struct finish_call *)tag;
    (void)ok;
    grpc_call_unref(f->call);
    free(f);
}

void rpc_finish_call(grpc_call *call, int err, const char *details, bool send_initial_metadata)
{
    grpc_status_code status = rpc_status_from_errno(err);
    struct finish_call *f = calloc(1, sizeof *f);
    if (!f) { /* no room for the batch: end the call without a status */
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        return;
    }
    f->tag.fn = finish_done;
    f->call = call;
    snprintf(f->details, sizeof f->details, "%s", details ? details : "");
    grpc_slice text = grpc_slice_from_static_string(f->details);
    grpc_op ops[3] = {0};
    size_t n = 0;
    if (send_initial_metadata)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n++].data.send_status_from_server.status_details = &text;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &f->cancelled;
    if (grpc_call_start_batch(call, ops, n, &f->tag, NULL) != GRPC_CALL_OK)
        finish_done(&f->tag, false);
}

bool rpc_call_arm(struct rpc_call_context *ctx, struct rpc_server *server, void *method,
                  bool payload, struct rpc_tag *tag)
{
    ctx->server = server;
    grpc_metadata_array_init(&ctx->metadata);
    return grpc_server_request_registered_call(server->server, method, &ctx->call, &ctx->deadline,
                                               &ctx->metadata, payload ? &ctx->in : NULL,
                                               server->cq, server->cq, tag) == GRPC_CALL_OK;
}

void rpc_call_free(void *owner, struct rpc_call_context *ctx)
{
    if (ctx->call)
        grpc_call_unref(ctx->call);
    grpc_metadata_array_destroy(&ctx->metadata);
    if (ctx->in)
        grpc_byte_buffer_destroy(ctx->in);
    if (ctx->out)
        grpc_byte_buffer_destroy(ctx->out);
    free(owner);
}

static void arm_unary(struct rpc_server *server, struct rpc_registered *method);

static void unary_sent(struct rpc_tag *tag, bool ok)
{
    struct unary_call *c = (struct unary_call *)tag;
    (void)ok;
    rpc_call_free(c, &c->ctx);
}

/* Decodes the request and runs the handler; fills c->reply. */
static void unary_dispatch(struct unary_call *c)
{
    const struct rpc_method *method = c->method->method;
    ProtobufCMessage *request = rpc_unpack(c->ctx.in, method->request_type);
    if (!request) {
        rpc_reply_errno(&c->reply, EINVAL, "the request is not a valid %s message",
                        method->request_type->name);
        return;
    }
    method->handler(c->method->service->opaque, request, &c->reply);
    protobuf_c_message_free_unpacked(request, NULL);
    if (!c->reply.answered)
        rpc_reply_errno(&c->reply, EPROTO, "%s gave no answer", method->name);
}

static void unary_arrived(struct rpc_tag *tag, bool ok)
{
    struct unary_call *c = (struct unary_call *)tag;
    if (!ok) { /* the server is shutting down */
        rpc_call_free(c, &c->ctx);
        return;
    }
    arm_unary(c->ctx.server, c->method);
    unary_dispatch(c);
    c->ctx.out = c->reply.payload; /* freed with the call */
    c->reply.payload = NULL;
    grpc_slice details = grpc_slice_from_static_string(c->reply.details);
    grpc_op ops[4] = {0};
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->reply.status == GRPC_STATUS_OK) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->ctx.out;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->reply.status;
    ops[n++].data.send_status_from_server.status_details = &details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->tag.fn = unary_sent;
    if (grpc_call_start_batch(c->ctx.call, ops, n, &c->tag, NULL) != GRPC_CALL_OK)
        rpc_call_free(c, &c->ctx);
}

static void arm_unary(struct rpc_server *server, struct rpc_registered *method)
{
    if (atomic_load(&server->stopping))
        return;
    struct unary_call *c = calloc(1, sizeof *c);
    if (!c) {
        log_error(server->log, "cannot wait for a call of %s: out of memory", method->method->name);
        return;
    }
    c->tag.fn = unary_arrived;
    c->method = method;
    if (!rpc_call_arm(&c->ctx, server, method->handle, true, &c->tag))
        rpc_call_free(c, &c->ctx);
}

static void arm_generic(struct rpc_server *server);

static void generic_free(struct generic_call *g)
{
    grpc_call_details_destroy(&g->details);
    rpc_call_free(g, &g->ctx);
}

/* A call to a method nobody registered. */
static void generic_arrived(struct rpc_tag *tag, bool ok)
{
    struct generic_call *g = (struct generic_call *)tag;
    if (ok) {
        arm_generic(g->ctx.server);
        char details[300];
        char *method = grpc_slice_to_c_string(g->details.method);
        snprintf(details, sizeof details, "unknown method %s", method);
        gpr_free(method);
        rpc_finish_call(g->ctx.call, ENOSYS, details, true);
        g->ctx.call = NULL; /* rpc_finish_call owns it now */
    }
    generic_free(g);
}

static void arm_generic(struct rpc_server *server)
{
    if (atomic_load(&server->stopping))
        return;
    struct generic_call *g = calloc(1, sizeof *g);
    if (!g) {
        log_error(server->log, "cannot wait for calls of unknown methods: out of memory");
        return;
    }
    g->tag.fn = generic_arrived;
    g->ctx.server = server;
    grpc_call_details_init(&g->details);
    grpc_metadata_array_init(&g->ctx.metadata);
    if (grpc_server_request_call(server->server, &g->ctx.call, &g->details, &g->ctx.metadata,
                                 server->cq, server->cq, &g->tag) != GRPC_CALL_OK)
        generic_free(g);
}

static void *cq_thread(void *arg)
{
    struct rpc_server *server = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type == GRPC_OP_COMPLETE)
            ((struct rpc_tag *)ev.tag)->fn(ev.tag, ev.success != 0);
    }
}

static void shutdown_arrived(struct rpc_tag *tag, bool ok)
{
    struct rpc_server *server =
        (struct rpc_server *)((char *)tag - offsetof(struct rpc_server, shutdown_tag));
    (void)ok;
    pthread_mutex_lock(&server->lock);
    server->shutdown_done = true;
    pthread_cond_broadcast(&server->changed);
    pthread_mutex_unlock(&server->lock);
}

/* Registers one service's methods into server->methods; -1 on a clash. */
static int register_service(struct rpc_server *server, const struct rpc_service *service)
{
    for (size_t j = 0; j < service->n_methods; j++) {
        char path[256];
        snprintf(path, sizeof path, "/%s/%s", service->name, service->methods[j].name);
        struct rpc_registered *r = &server->methods[server->n_methods++];
        r->service = service;
        r->method = &service->methods[j];
        r->handle = grpc_server_register_method(server->server, path, NULL,
                                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!r->handle)
            return errno = EEXIST, -1;
    }
    return 0;
}

/* Registers the caller's services and the built-in unary ones. */
static int register_methods(struct rpc_server *server)
{
    size_t total = server->builtin[0].n_methods;
    for (size_t i = 0; i < server->n_services; i++)
        total += server->services[i].n_methods;
    server->methods = calloc(total, sizeof *server->methods);
    if (!server->methods)
        return errno = ENOMEM, -1;
    for (size_t i = 0; i < server->n_services; i++)
        if (register_service(server, &server->services[i]) < 0)
            return -1;
    return register_service(server, &server->builtin[0]);
}

static grpc_server_credentials *server_credentials(const struct rpc_tls *tls, char *err,
                                                   size_t errlen)
{
    if (!tls->cert)
        return grpc_insecure_server_credentials_create();
    char *cert = rpc_read_pem(tls->cert, err, errlen);
    char *key = cert ? rpc_read_pem(tls->key, err, errlen) : NULL;
    char *ca = key && tls->client_ca ? rpc_read_pem(tls->client_ca, err, errlen) : NULL;
    grpc_server_credentials *creds = NULL;
    if (key && (!tls->client_ca || ca)) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        creds = grpc_ssl_server_credentials_create_ex(
            ca, &pair, 1,
            ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            NULL);
        if (!creds)
            snprintf(err, errlen, "cannot use TLS certificate %s and key %s", tls->cert, tls->key);
    }
    free(cert);
    free(key);
    free(ca);
    return creds;
}

/* Creates, registers and binds; the server is not started yet. */
static int create_server(struct rpc_server *server, const struct rpc_server_config *config,
                         int *port, char *err, size_t errlen)
{
    grpc_arg args[4] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)server->max_message},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)server->max_message},
        /* gRPC sets SO_REUSEPORT by default: a second daemon would share
         * the port silently instead of failing. */
        {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        /* At most this many calls at once per client connection (HTTP/2
         * SETTINGS_MAX_CONCURRENT_STREAMS); more wait in the client. */
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS,
         .value.integer = RPC_MAX_CALLS_PER_CONNECTION},
    };
    grpc_channel_args channel_args = {4, args};
    server->server = grpc_server_create(&channel_args, NULL);
    server->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server->server, server->cq, NULL);
    health_register(server);
    if (register_methods(server) < 0) {
        snprintf(err, errlen, "%s",
                 errno == ENOMEM ? "out of memory registering the gRPC methods"
                                 : "a gRPC method is registered twice");
        return -1;
    }
    if (reflection_register(server) < 0) {
        snprintf(err, errlen, "%s",
                 errno == ENOMEM ? "out of memory indexing the descriptor set for reflection"
                                 : "the embedded descriptor set does not parse");
        return -1;
    }
    grpc_server_credentials *creds = server_credentials(&config->tls, err, errlen);
    if (!creds)
        return -1;
    *port = grpc_server_add_http2_port(server->server, config->listen, creds);
    grpc_server_credentials_release(creds);
    if (*port == 0) {
        snprintf(err, errlen, "cannot listen on %s: the address is in use or invalid",
                 config->listen);
        return -1;
    }
    if (strncmp(config->listen, "unix:", 5) == 0)
        *port = 0;
    return 0;
}

static void destroy(struct rpc_server *server)
{
    if (server->server)
        grpc_server_destroy(server->server);
    if (server->cq)
        grpc_completion_queue_destroy(server->cq);
    reflection_free(server);
    free(server->methods);
    free(server->threads);
    pthread_mutex_destroy(&server->lock);
    pthread_cond_destroy(&server->changed);
    free(server);
    grpc_shutdown();
}

static void arm_everything(struct rpc_server *server)
{
    for (size_t i = 0; i < server->n_methods; i++)
        for (int k = 0; k < CALLS_ARMED_PER_METHOD; k++)
            arm_unary(server, &server->methods[i]);
    arm_generic(server);
    health_arm(server);
    reflection_arm(server);
}

/* Ends a server whose start failed after it was armed: shut down, then
 * drain the queue in this thread (armed calls come back and free
 * themselves), then free everything. */
static void abandon(struct rpc_server *server)
{
    atomic_store(&server->stopping, true);
    grpc_server_shutdown_and_notify(server->server, server->cq, &server->shutdown_tag);
    grpc_server_cancel_all_calls(server->server);
    grpc_completion_queue_shutdown(server->cq);
    cq_thread(server);
    destroy(server);
}

/* Starts the completion-queue threads; fewer than asked is logged, none is
 * an error (ERR). */
static int start_threads(struct rpc_server *server, char *err, size_t errlen)
{
    int wanted = server->n_threads, r = 0;
    server->n_threads = 0;
    while (server->n_threads < wanted &&
           (r = pthread_create(&server->threads[server->n_threads], NULL, cq_thread, server)) == 0)
        server->n_threads++;
    if (server->n_threads == 0) {
        snprintf(err, errlen, "cannot start a gRPC thread: %s", strerror(r));
        return -1;
    }
    if (server->n_threads < wanted)
        log_warn(server->log, "gRPC runs %d of its %d threads: %s", server->n_threads, wanted,
                 strerror(r));
    return 0;
}

struct rpc_server *rpc_server_start(const struct rpc_server_config *config,
                                    const struct rpc_service *services, size_t n_services,
                                    int *port, char *err, size_t errlen)
{
    grpc_init();
    struct rpc_server *server = calloc(1, sizeof *server);
    int n_threads = config->threads > 0 ? config->threads : 4;
    if (!server || !(server->threads = calloc((size_t)n_threads, sizeof *server->threads))) {
        snprintf(err, errlen, "out of memory starting the gRPC server");
        free(server);
        grpc_shutdown();
        return NULL;
    }
    server->log = config->log;
    server->services = services;
    server->n_services = n_services;
    server->max_message = config->max_message ? config->max_message : 4u << 20;
    server->n_threads = n_threads;
    atomic_init(&server->serving, true);
    pthread_mutex_init(&server->lock, NULL);
    pthread_cond_init(&server->changed, NULL);
    int bound = 0;
    if (create_server(server, config, &bound, err, errlen) < 0) {
        /* Never started: nothing is armed yet, so shut down plainly. */
        grpc_server_shutdown_and_notify(server->server, server->cq, &server->shutdown_tag);
        grpc_server_cancel_all_calls(server->server);
        grpc_completion_queue_shutdown(server->cq);
        while (
            grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
            GRPC_QUEUE_SHUTDOWN)
            ;
        destroy(server);
        return NULL;
    }
    grpc_server_start(server->server);
    server->shutdown_tag.fn = shutdown_arrived;
    arm_everything(server);
    if (start_threads(server, err, errlen) < 0) {
        abandon(server);
        return NULL;
    }
    if (port)
        *port = bound;
    return server;
}

void rpc_server_set_serving(struct rpc_server *server, bool serving)
{
    if (atomic_exchange(&server->serving, serving) != serving)
        health_notify(server);
}

/* Waits until the shutdown tag arrived or MS passed; true if it arrived. */
static bool wait_shutdown(struct rpc_server *server, int ms)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
    struct timespec until = {deadline.tv_sec, deadline.tv_nsec};
    pthread_mutex_lock(&server->lock);
    while (!server->shutdown_done)
        if (pthread_cond_timedwait(&server->changed, &server->lock, &until) != 0)
            break;
    bool done = server->shutdown_done;
    pthread_mutex_unlock(&server->lock);
    return done;
}

void rpc_server_stop(struct rpc_server *server, int grace_ms)
{
    if (!server)
        return;
    atomic_store(&server->stopping, true);
    rpc_server_set_serving(server, false);
    health_end_watches(server);
    grpc_server_shutdown_and_notify(server->server, server->cq, &server->shutdown_tag);
    if (!wait_shutdown(server, grace_ms)) {
        log_warn(server->log, "gRPC calls still running after %d ms; cancelling them", grace_ms);
        grpc_server_cancel_all_calls(server->server);
        wait_shutdown(server, 60000);
    }
    grpc_completion_queue_shutdown(server->cq);
    for (int i = 0; i < server->n_threads; i++)
        pthread_join(server->threads[i], NULL);
    destroy(server);
}
