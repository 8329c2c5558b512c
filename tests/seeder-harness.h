/* SPDX-License-Identifier: MIT */
/* Test harness for the seeder: start a real godwit-seeder on a fresh random
 * image, reach its NBD export with libnbd and its gRPC API with rpc_call. */
#ifndef GODWIT_TEST_SEEDER_HARNESS_H
#define GODWIT_TEST_SEEDER_HARNESS_H

#include <libnbd.h>
#include <sys/types.h>

#include "godwit/v1/seeder.pb-c.h"
#include "rpc-client.h"

struct seeder_proc {
    char *dir;        /* temp dir holding image, socket, log */
    char image[512];  /* the image file */
    char socket[512]; /* the NBD unix socket */
    char log[512];    /* the seeder's stdout+stderr */
    char target[64];  /* "127.0.0.1:PORT" */
    int port;         /* from the ready event (first started on port 0) */
    char chunk_size[32];
    const char *extra[16]; /* extra flags, kept for seeder_restart */
    size_t n_extra;
    pid_t pid;
    struct rpc_channel *channel;
};

/* Writes a random image of SIZE bytes and starts a seeder on it with
 * CHUNK_SIZE and EXTRA flags (NULL-terminated, may be NULL). */
void seeder_start(struct seeder_proc *s, const char *name, uint64_t size, uint64_t chunk_size,
                  const char *const *extra);

/* Starts the seeder again on the same image, port and socket (a new
 * image identity), after seeder_stop or a kill. The port is the one the
 * kernel chose for the first start; in the moment between the two only
 * another bind to port 0 could take it (connect() takes even ports, bind(0)
 * odd ones: Linux keeps them apart). */
void seeder_restart(struct seeder_proc *s);

/* Stops it with SIGTERM; returns its exit status. Keeps the temp dir. */
int seeder_stop(struct seeder_proc *s);

/* Removes the temp dir and frees everything. */
void seeder_cleanup(struct seeder_proc *s);

/* A libnbd handle connected to the seeder's export. */
struct nbd_handle *seeder_nbd(struct seeder_proc *s);

/* Calls Seeder.METHOD; returns the status, stores the reply (or NULL). */
grpc_status_code seeder_call(struct seeder_proc *s, const char *method,
                             const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *response_type,
                             ProtobufCMessage **response, struct rpc_result *result);

#endif
