/* SPDX-License-Identifier: MIT */
/* A gRPC client on the C core for unary protobuf-c calls. One rpc_channel
 * is one HTTP/2 connection of its own (a local subchannel pool), so a pool
 * of channels really is a pool of TCP connections. Thread-safe: any number
 * of threads may call on one channel at once. */
#ifndef GODWIT_RPC_CLIENT_H
#define GODWIT_RPC_CLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <sys/uio.h>

#include "rpc-server.h" /* struct rpc_tls */

struct rpc_channel;

struct rpc_channel_config {
    const char *target; /* "127.0.0.1:1337" or "unix:/path" */
    size_t max_message; /* largest message either way; 0 means 4 MiB */
    struct rpc_tls tls; /* client side: cert/key = our certificate (optional),
                           client_ca = CA that verifies the server; all NULL
                           for plaintext */
};

/* Creates the channel (connects lazily). NULL with a sentence in ERR on
 * bad arguments. */
struct rpc_channel *rpc_channel_open(const struct rpc_channel_config *config, char *err,
                                     size_t errlen);
void rpc_channel_close(struct rpc_channel *channel);
/* Starts connecting CHANNEL now (TCP, TLS, HTTP/2 settings) in gRPC's own
 * threads, instead of at its first call; returns at once. */
void rpc_channel_connect(struct rpc_channel *channel);

/* The result of one call. */
struct rpc_result {
    grpc_status_code status;
    char message[256]; /* the server's (or the library's) status details */
};

/* Calls METHOD ("/godwit.v1.Seeder/Info") with REQUEST and waits at most
 * TIMEOUT_MS. On GRPC_STATUS_OK, *RESPONSE is the decoded reply (free it
 * with protobuf_c_message_free_unpacked(*response, NULL)); otherwise
 * *RESPONSE is NULL. A reply that does not decode gives GRPC_STATUS_INTERNAL. */
grpc_status_code rpc_call(struct rpc_channel *channel, const char *method,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_type,
                          ProtobufCMessage **response, int timeout_ms, struct rpc_result *result);

/* A reply's bytes as the transport received them, in COUNT slices: large
 * replies are parsed and stored in place, never copied into one buffer. */
struct rpc_response {
    grpc_slice *slices;
    size_t count;
    size_t length; /* of all slices together */
};

/* Like rpc_call, but hands back the raw reply bytes in *REPLY (free them
 * with rpc_response_free) instead of decoding them. */
grpc_status_code rpc_call_raw(struct rpc_channel *channel, const char *method,
                              const ProtobufCMessage *request, struct rpc_response *reply,
                              int timeout_ms, struct rpc_result *result);
void rpc_response_free(struct rpc_response *reply);

/* Points IOV (room for MAX entries) at the LENGTH bytes from OFFSET of
 * REPLY. Returns the number of entries, or -1 if the range is not in the
 * reply or needs more than MAX entries. */
int rpc_response_iov(const struct rpc_response *reply, size_t offset, size_t length,
                     struct iovec *iov, int max);

#endif
