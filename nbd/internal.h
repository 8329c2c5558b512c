/* SPDX-License-Identifier: MIT */
/* Internals shared by the NBD server's files: the server and connection
 * structs, socket I/O helpers, the handshake, the request loop, replies and
 * extents. */
#ifndef GODWIT_NBD_INTERNAL_H
#define GODWIT_NBD_INTERNAL_H

#include "nbd-server.h"
#include "protocol.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

struct logger;

/* One client. server and fd are set before the thread starts and never
 * change; fd is closed only after every thread using it is joined. */
struct nbd_connection {
    struct nbd_server *server;
    int fd;
    pthread_t thread; /* handshake, then worker 0 of the request loop */
    bool no_zeroes;   /* set during the handshake, read by the thread only */
    /* Negotiated in the handshake by the connection thread before any other
     * worker starts; read-only during transmission. */
    bool structured;      /* NBD_OPT_STRUCTURED_REPLY was acknowledged */
    bool base_allocation; /* NBD_OPT_SET_META_CONTEXT selected base:allocation */

    /* Held while one worker reads a request (header + payload): requests
     * never mix. read_lock also owns closing. */
    pthread_mutex_t read_lock;
    bool closing; /* nothing more is read: end of stream, a broken request or DISC */

    /* Held while a reply (header + data) is written: replies never mix. */
    pthread_mutex_t write_lock;

    /* Owned by server->lock. */
    struct nbd_connection *next;
    bool finished; /* the thread has ended; join it */
};

/* The server. Everything above lock is set in nbd_server_start before any
 * thread starts and is read-only afterwards. */
struct nbd_server {
    struct nbd_backend backend;      /* copied at start */
    struct nbd_server_config config; /* copied, defaults applied */
    char *unix_path, *export_name, *description;
    int listeners[2];
    int n_listeners;
    int tcp_port; /* the bound TCP port (tcp_address may ask for 0); 0 without TCP */
    pthread_t acceptor;
    bool has_acceptor;
    int wake[2]; /* self-pipe (non-blocking) that wakes the acceptor: at stop,
                    and when a connection ends so that it is reaped */

    /* lock owns connections, n_connections and stopping. */
    pthread_mutex_t lock;
    struct nbd_connection *connections;
    unsigned n_connections;
    bool stopping;
};

/* Logs one sentence if the server has a logger. */
void nbd_log(struct nbd_server *server, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whole-buffer socket I/O: 0, or -1 on error or end of stream. */
int nbd_read_full(int fd, void *buf, size_t len);
int nbd_write_full(int fd, const void *buf, size_t len);
/* The same, telling the kernel more follows at once (MSG_MORE). */
int nbd_write_more(int fd, const void *buf, size_t len);
/* Reads and drops LEN bytes. */
int nbd_discard(int fd, uint64_t len);

/* Joins and frees the connections whose thread has ended. */
void nbd_reap_connections(struct nbd_server *server);

/* True once nbd_server_stop has begun. */
bool nbd_server_stopping(struct nbd_server *server);

/* Wakes every connection's reader (in-flight replies still go out), joins
 * every connection thread and frees the connections. */
void nbd_close_connections(struct nbd_server *server);

/* Sends one option reply (header, then LEN bytes of DATA); 0 or -1. */
int nbd_option_reply(int fd, uint32_t option, uint32_t type, const void *data, uint32_t len);

/* Answers NBD_OPT_LIST_META_CONTEXT or NBD_OPT_SET_META_CONTEXT (payload
 * DATA of LEN bytes); 0 to go on, -1 to close. */
int nbd_option_meta_context(struct nbd_connection *conn, uint32_t option, const char *data,
                            uint32_t len);

/* True if the client may use NAME (of LEN bytes, not NUL-terminated). */
bool nbd_export_known(const struct nbd_server *server, const char *name, size_t len);

/* Runs option negotiation on CONN; 0 to go on to transmission, -1 to close. */
int nbd_handshake(struct nbd_connection *conn);

/* Serves requests until the client disconnects or the server stops. */
void nbd_serve_requests(struct nbd_connection *conn);

/* The transmission flags CONN is told (DF only with structured replies). */
uint16_t nbd_transmission_flags(const struct nbd_connection *conn);

/* One extent of a block status reply, in host order until sent. */
struct nbd_extent {
    uint32_t length, flags;
};

/* A block status answer being built by a backend's extents callback: owned
 * by the one worker serving the request, its list reused across requests. */
struct nbd_extents {
    uint64_t start, end; /* the request: [start, end) */
    uint64_t next;       /* where the next extent must begin */
    size_t count, capacity, max;
    struct nbd_extent *list;
};

/* Fills EXTENTS for REQ (a validated BLOCK_STATUS) from the backend: 0, or
 * -1 with errno. */
int nbd_serve_block_status(const struct nbd_backend *backend, struct nbd_extents *extents,
                           const struct nbd_request *req);
void nbd_extents_free(struct nbd_extents *extents);

/* One request, on the stack of the worker that read it. */
struct nbd_job {
    struct nbd_request request;  /* host byte order (handle: raw) */
    void *data;                  /* READ/WRITE: the worker's buffer (a WRITE's payload) */
    int error;                   /* set by validation: reply with this errno, run nothing */
    const char *why;             /* with error: the sentence for a structured error */
    struct nbd_extents *extents; /* BLOCK_STATUS: the worker's answer */
};

/* Sends JOB's reply under the write lock: ERROR (an errno) or success (a
 * READ's data, a BLOCK_STATUS's extents), simple or structured as
 * negotiated. 0, or -1 when the client is gone. */
int nbd_send_reply(struct nbd_connection *conn, const struct nbd_job *job, int error);

/* errno -> NBD error on the wire for a request with FLAGS, as nbdkit's
 * nbd_errno does: NBD_ENOTSUP only for a request that asked for it
 * (NBD_CMD_FLAG_FAST_ZERO), NBD_EOVERFLOW only for one that asked for an
 * unfragmented read (NBD_CMD_FLAG_DF, which needs structured replies);
 * otherwise both are NBD_EINVAL, which every client knows. Anything
 * without an NBD value is NBD_EIO. */
uint32_t nbd_errno_to_wire(int err, uint16_t flags);

#endif
