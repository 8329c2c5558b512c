/* SPDX-License-Identifier: MIT */
/* A gRPC server on the C core for unary protobuf-c services, with the
 * standard health (grpc.health.v1) and reflection (grpc.reflection.v1alpha
 * and v1) services built in. Calls are served by a pool of threads on one
 * completion queue; handlers run concurrently and must do their own locking. */
#ifndef GODWIT_RPC_SERVER_H
#define GODWIT_RPC_SERVER_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Calls one client connection may have open at once (documented in README). */
#define RPC_MAX_CALLS_PER_CONNECTION 256

struct logger;
struct rpc_server;
struct rpc_reply; /* what a handler answers; owned by the server */

/* Handles one unary call. REQUEST is decoded already (a request that does
 * not decode is answered INVALID_ARGUMENT without calling the handler) and
 * freed after the handler returns. The handler must answer exactly once
 * through rpc_reply_message, rpc_reply_slice or rpc_reply_errno. */
typedef void rpc_handler(void *opaque, const ProtobufCMessage *request, struct rpc_reply *reply);

struct rpc_method {
    const char *name; /* the method's simple name, e.g. "ReadAt" */
    const ProtobufCMessageDescriptor *request_type;
    rpc_handler *handler;
};

struct rpc_service {
    const char *name; /* full service name, e.g. "godwit.v1.Seeder" */
    const struct rpc_method *methods;
    size_t n_methods;
    void *opaque; /* passed to every handler */
};

/* TLS material, PEM file paths; all NULL for plaintext. */
struct rpc_tls {
    const char *cert;      /* server certificate chain */
    const char *key;       /* its private key */
    const char *client_ca; /* if set, require and verify client certificates (mTLS) */
};

/* Reads and parses each file TLS names (with OpenSSL): the certificates
 * must parse and not have expired, the key must be an unencrypted PEM key
 * that belongs to the certificate. -1 with one sentence in ERR naming the
 * flag (--tls-cert, --tls-key, --tls-ca) and the file. */
int rpc_tls_check(const struct rpc_tls *tls, char *err, size_t errlen);

struct rpc_server_config {
    const char *listen; /* "127.0.0.1:1337", "[::]:1337" or "unix:/path" */
    int threads;        /* completion-queue threads; 0 means 4 */
    size_t max_message; /* largest message either way, bytes; 0 means 4 MiB */
    struct rpc_tls tls;
    struct logger *log;
};

/* Starts serving SERVICES (the array must outlive the server) plus health
 * and reflection. Reflection serves the descriptor set from
 * api/descriptor-set.h. On success returns the server and stores the bound
 * TCP port in *PORT (useful with port 0; 0 for unix sockets). On failure
 * returns NULL with one sentence in ERR (e.g. "cannot listen on
 * 127.0.0.1:1337: address in use or invalid"). */
struct rpc_server *rpc_server_start(const struct rpc_server_config *config,
                                    const struct rpc_service *services, size_t n_services,
                                    int *port, char *err, size_t errlen);

/* Sets what health checks report, for "" (the whole server) and every
 * service: SERVING when true, NOT_SERVING when false. Watch streams get the
 * change. Starts SERVING. */
void rpc_server_set_serving(struct rpc_server *server, bool serving);

/* Graceful stop: no new calls, in-flight calls finish (waits at most
 * GRACE_MS, then cancels them), threads joined, everything freed. */
void rpc_server_stop(struct rpc_server *server, int grace_ms);

/* Answers with MESSAGE (packed now; the caller keeps ownership). */
void rpc_reply_message(struct rpc_reply *reply, const ProtobufCMessage *message);

/* Answers with an already-encoded message; takes ownership of PAYLOAD.
 * Lets a handler build a large reply (ReadAt) without an extra copy. */
void rpc_reply_slice(struct rpc_reply *reply, grpc_slice payload);

/* Answers a failure: ERR (an errno value, never 0) becomes the status
 * through rpc_status_from_errno, the one mapping every handler uses; the
 * message is one sentence. */
void rpc_reply_errno(struct rpc_reply *reply, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one errno -> status mapping (the table is in docs/errors.md):
 * EINVAL -> INVALID_ARGUMENT, ERANGE/ENOSPC/EOVERFLOW -> OUT_OF_RANGE,
 * EBUSY (wrong state) and ESTALE (another image) -> FAILED_PRECONDITION,
 * EAGAIN/EIO/ECONNREFUSED/ECONNRESET/ESHUTDOWN -> UNAVAILABLE (retry),
 * ENOENT -> NOT_FOUND, EPERM/EACCES -> PERMISSION_DENIED, ENOMEM/EUSERS ->
 * RESOURCE_EXHAUSTED, ENOTSUP/ENOSYS -> UNIMPLEMENTED, ETIMEDOUT ->
 * DEADLINE_EXCEEDED, ECANCELED -> CANCELLED, EEXIST -> ALREADY_EXISTS,
 * anything else INTERNAL. */
grpc_status_code rpc_status_from_errno(int err);

#endif
