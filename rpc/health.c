/* SPDX-License-Identifier: MIT */
/* grpc.health.v1.Health: Check (unary, through the ordinary method table)
 * and Watch (server streaming: the current status, then every change, until
 * the client goes away or the server stops). "" means the whole server;
 * every registered service name is known. */
#include "internal.h"

#include "grpc/health/v1/health.pb-c.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One Watch stream. ctx.out and the fields from `next` on are owned by
 * server->lock. */
struct health_watch {
    struct rpc_tag arrived, sent, closed_tag;
    struct rpc_call_context ctx; /* ctx.in: the request; ctx.out: the status being sent */
    int cancelled;
    char service[128];
    bool known;

    struct health_watch *next;
    int refs;         /* outstanding batches (close + send) */
    int last_sent;    /* ServingStatus last sent; -1 none */
    bool sending;     /* a send batch is in flight */
    bool closed;      /* the client is gone */
    bool finishing;   /* the server is stopping: send the final status */
    bool header_sent; /* initial metadata went out */
};

static bool service_known(const struct rpc_server *server, const char *name)
{
    if (name[0] == '\0' || strcmp(name, "grpc.health.v1.Health") == 0)
        return true;
    for (size_t i = 0; i < server->n_services; i++)
        if (strcmp(server->services[i].name, name) == 0)
            return true;
    return false;
}

static int current_status(struct rpc_server *server, bool known)
{
    if (!known)
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    return atomic_load(&server->serving)
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void handle_check(void *opaque, const ProtobufCMessage *message, struct rpc_reply *reply)
{
    struct rpc_server *server = opaque;
    const Grpc__Health__V1__HealthCheckRequest *request = (const void *)message;
    if (!service_known(server, request->service)) {
        rpc_reply_errno(reply, ENOENT, "unknown service \"%s\"", request->service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse response = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    response.status = current_status(server, true);
    rpc_reply_message(reply, &response.base);
}

static const struct rpc_method check_method[] = {
    {"Check", &grpc__health__v1__health_check_request__descriptor, handle_check},
};

static void arm_watch(struct rpc_server *server);

/* Drops one reference; unlinks and frees at zero. Caller holds the lock. */
static void watch_release(struct health_watch *w)
{
    if (--w->refs > 0)
        return;
    struct health_watch **p = &w->ctx.server->watches;
    while (*p && *p != w)
        p = &(*p)->next;
    if (*p)
        *p = w->next;
    rpc_call_free(w, &w->ctx);
}

/* Starts the next send if one is due. Caller holds the lock. */
static void watch_pump(struct health_watch *w)
{
    if (w->sending || w->closed)
        return;
    grpc_op ops[2] = {0};
    size_t n = 0;
    grpc_slice empty = grpc_empty_slice();
    int status = current_status(w->ctx.server, w->known);
    if (!w->header_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        w->header_sent = true;
    }
    if (w->finishing) {
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[n++].data.send_status_from_server.status_details = &empty;
        w->closed = true; /* nothing more after the status */
    } else if (status != w->last_sent) {
        Grpc__Health__V1__HealthCheckResponse response =
            GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        response.status = status;
        w->ctx.out = rpc_pack(&response.base);
        w->last_sent = status;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = w->ctx.out;
    } else {
        return;
    }
    w->sending = true;
    w->refs++;
    if (grpc_call_start_batch(w->ctx.call, ops, n, &w->sent, NULL) != GRPC_CALL_OK) {
        w->sending = false;
        w->closed = true;
        w->refs--;
    }
}

static void watch_sent(struct rpc_tag *tag, bool ok)
{
    struct health_watch *w =
        (struct health_watch *)((char *)tag - offsetof(struct health_watch, sent));
    struct rpc_server *server = w->ctx.server; /* w may be freed below */
    pthread_mutex_lock(&server->lock);
    w->sending = false;
    if (w->ctx.out)
        grpc_byte_buffer_destroy(w->ctx.out);
    w->ctx.out = NULL;
    if (!ok)
        w->closed = true;
    watch_pump(w);
    watch_release(w);
    pthread_mutex_unlock(&server->lock);
}

static void watch_closed(struct rpc_tag *tag, bool ok)
{
    struct health_watch *w =
        (struct health_watch *)((char *)tag - offsetof(struct health_watch, closed_tag));
    struct rpc_server *server = w->ctx.server; /* w may be freed below */
    (void)ok;
    pthread_mutex_lock(&server->lock);
    w->closed = true;
    watch_release(w);
    pthread_mutex_unlock(&server->lock);
}

static void watch_arrived(struct rpc_tag *tag, bool ok)
{
    struct health_watch *w = (struct health_watch *)tag;
    struct rpc_server *server = w->ctx.server;
    if (!ok) {
        rpc_call_free(w, &w->ctx);
        return;
    }
    arm_watch(server);
    Grpc__Health__V1__HealthCheckRequest *request =
        (void *)rpc_unpack(w->ctx.in, &grpc__health__v1__health_check_request__descriptor);
    snprintf(w->service, sizeof w->service, "%s", request ? request->service : "");
    w->known = request && service_known(server, w->service);
    if (request)
        protobuf_c_message_free_unpacked(&request->base, NULL);
    grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    close_op.data.recv_close_on_server.cancelled = &w->cancelled;
    pthread_mutex_lock(&server->lock);
    w->next = server->watches;
    server->watches = w;
    w->refs = 1;
    w->finishing = atomic_load(&server->stopping);
    if (grpc_call_start_batch(w->ctx.call, &close_op, 1, &w->closed_tag, NULL) != GRPC_CALL_OK)
        w->closed = true, w->refs = 0;
    if (w->refs == 0) {
        w->refs = 1;
        watch_release(w);
    } else {
        watch_pump(w);
    }
    pthread_mutex_unlock(&server->lock);
}

static void arm_watch(struct rpc_server *server)
{
    if (atomic_load(&server->stopping))
        return;
    struct health_watch *w = calloc(1, sizeof *w);
    if (!w) {
        log_error(server->log, "cannot wait for a health Watch: out of memory");
        return;
    }
    w->arrived.fn = watch_arrived;
    w->sent.fn = watch_sent;
    w->closed_tag.fn = watch_closed;
    w->last_sent = -1;
    if (!rpc_call_arm(&w->ctx, server, server->watch_method, true, &w->arrived))
        rpc_call_free(w, &w->ctx);
}

void health_register(struct rpc_server *server)
{
    server->builtin[0] = (struct rpc_service){
        .name = "grpc.health.v1.Health",
        .methods = check_method,
        .n_methods = 1,
        .opaque = server,
    };
    server->watch_method =
        grpc_server_register_method(server->server, "/grpc.health.v1.Health/Watch", NULL,
                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
}

void health_arm(struct rpc_server *server)
{
    for (int i = 0; i < 2; i++)
        arm_watch(server);
}

void health_notify(struct rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    for (struct health_watch *w = server->watches; w; w = w->next)
        watch_pump(w);
    pthread_mutex_unlock(&server->lock);
}

void health_end_watches(struct rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    for (struct health_watch *w = server->watches; w; w = w->next) {
        w->finishing = true;
        watch_pump(w);
    }
    pthread_mutex_unlock(&server->lock);
}
