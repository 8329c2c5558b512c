/* SPDX-License-Identifier: MIT */
/* Internals shared by the gRPC server's files (rpc-server.c, health.c,
 * reflection.c) and the client: completion-queue tags, the server struct,
 * and protobuf <-> byte-buffer glue. Not for the daemons. */
#ifndef GODWIT_RPC_INTERNAL_H
#define GODWIT_RPC_INTERNAL_H

#include "rpc-server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

/* Every completion-queue tag starts with this: the event is dispatched to
 * fn with the event's success bit. */
struct rpc_tag {
    void (*fn)(struct rpc_tag *tag, bool ok);
};

struct rpc_registered {
    const struct rpc_service *service;
    const struct rpc_method *method;
    void *handle; /* from grpc_server_register_method */
};

/* What every served call holds from its armed request to its end: the
 * unary call, the health Watch and the reflection stream each embed one
 * and free it with rpc_call_free. */
struct rpc_call_context {
    struct rpc_server *server;
    grpc_call *call; /* our reference; NULL once handed on */
    gpr_timespec deadline;
    grpc_metadata_array metadata;
    grpc_byte_buffer *in;  /* the message received (a unary call's request) */
    grpc_byte_buffer *out; /* the message being sent */
};

/* Asks for the next call of the registered METHOD into CTX (with its first
 * message in ctx->in if PAYLOAD), to complete on TAG; false if gRPC refused. */
bool rpc_call_arm(struct rpc_call_context *ctx, struct rpc_server *server, void *method,
                  bool payload, struct rpc_tag *tag);
/* Releases what CTX holds (the call, the metadata, both messages), then
 * frees OWNER, the allocation CTX is part of. */
void rpc_call_free(void *owner, struct rpc_call_context *ctx);

struct health_watch;
struct reflection_index;

struct rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq; /* one for_next queue, drained by every thread */
    pthread_t *threads;
    int n_threads;
    struct logger *log;
    size_t max_message;

    /* Set before start, read-only afterwards. */
    struct rpc_registered *methods;
    size_t n_methods;
    const struct rpc_service *services;
    size_t n_services;
    struct rpc_service builtin[1]; /* health Check as an ordinary unary service */
    void *watch_method, *reflection_methods[2];
    struct reflection_index *reflection;

    _Atomic bool stopping; /* no more re-arming */
    _Atomic bool serving;  /* what health reports */

    /* lock owns watches and shutdown_done. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct health_watch *watches;
    bool shutdown_done;
    struct rpc_tag shutdown_tag;
};

/* Encodes MESSAGE into a new byte buffer. (gRPC's own allocator, which
 * this uses, aborts when memory runs out: it never returns NULL.) */
grpc_byte_buffer *rpc_pack(const ProtobufCMessage *message);

/* Flattens BUFFER into one slice (caller unrefs). */
grpc_slice rpc_flatten(grpc_byte_buffer *buffer);

/* Decodes BUFFER as TYPE; NULL if it does not decode. */
ProtobufCMessage *rpc_unpack(grpc_byte_buffer *buffer, const ProtobufCMessageDescriptor *type);

/* Reads a whole file into a NUL-terminated string (PEM files); NULL with
 * a sentence in ERR. */
char *rpc_read_pem(const char *path, char *err, size_t errlen);

/* health.c */
void health_register(struct rpc_server *server);
void health_arm(struct rpc_server *server);
void health_notify(struct rpc_server *server);
void health_end_watches(struct rpc_server *server);

/* reflection.c */
int reflection_register(struct rpc_server *server);
void reflection_arm(struct rpc_server *server);
void reflection_free(struct rpc_server *server);

/* A batch that only ends a call with the status for ERR (0: OK; through
 * rpc_status_from_errno) and DETAILS, for generic unknown methods and
 * stream errors; frees itself and unrefs CALL. */
void rpc_finish_call(grpc_call *call, int err, const char *details, bool send_initial_metadata);

#endif
