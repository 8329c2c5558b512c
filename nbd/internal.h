/* SPDX-License-Identifier: MIT */
/* Internals shared by the NBD server's files: the server and connection
 * structs, socket I/O helpers, the handshake and the request loop. */
#ifndef GODWIT_NBD_INTERNAL_H
#define GODWIT_NBD_INTERNAL_H

#include "nbd-server.h"

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

/* Runs option negotiation on CONN; 0 to go on to transmission, -1 to close. */
int nbd_handshake(struct nbd_connection *conn);

/* Serves requests until the client disconnects or the server stops. */
void nbd_serve_requests(struct nbd_connection *conn);

/* The transmission flags this server advertises. */
uint16_t nbd_transmission_flags(const struct nbd_server *server);

/* errno -> NBD error on the wire for a request with FLAGS, as nbdkit's
 * nbd_errno does: NBD_ENOTSUP only for a request that asked for it
 * (NBD_CMD_FLAG_FAST_ZERO), NBD_EOVERFLOW only for one that asked for an
 * unfragmented read (NBD_CMD_FLAG_DF, which needs structured replies);
 * otherwise both are NBD_EINVAL, which every client knows. Anything
 * without an NBD value is NBD_EIO. */
uint32_t nbd_errno_to_wire(int err, uint16_t flags);

#endif
