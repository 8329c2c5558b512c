/* SPDX-License-Identifier: MIT */
/* An NBD server (fixed-newstyle handshake; simple replies, or structured
 * replies when the client asks for them) that serves any backend through one
 * small callbacks interface. Requests on a connection are served
 * concurrently and answered out of order; several connections at once; a
 * unix socket, a TCP address, or a connected fd (tests).
 *
 * With structured replies a client may select the base:allocation metadata
 * context and ask NBD_CMD_BLOCK_STATUS which ranges are holes or read as
 * zeroes (from the backend's extents callback; without one, everything is
 * data). Errors then carry a sentence saying why.
 *
 * Bad clients: an out-of-range request gets EINVAL (reads) or ENOSPC
 * (writes), a READ/WRITE larger than max_request or an unknown command
 * EINVAL, and the connection lives on. A refused WRITE's payload is read
 * and dropped when it is at most 4 x max_request; a larger one is answered
 * EINVAL and the connection closed (skipping gigabytes is not worth it).
 * Options longer than 64 KiB, a bad magic, or a handshake not finished in
 * 30 s close that connection only; a reply the client does not read for
 * 60 s ends its connection. */
#ifndef GODWIT_NBD_SERVER_H
#define GODWIT_NBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logger;
struct nbd_server;
struct nbd_extents;

/* base:allocation flags of an extent (the NBD_STATE_* values on the wire). */
#define NBD_EXTENT_HOLE 1u /* not allocated (writes there may need space) */
#define NBD_EXTENT_ZERO 2u /* reads as zeroes */
#define NBD_EXTENT_DATA 0u /* allocated, or not known */

/* Called by an extents callback: [offset, offset+length) has FLAGS.
 * Extents come in order, each starting where the previous one ended, the
 * first at or before the request's offset; what lies outside the request is
 * cut off and neighbours with the same flags merge. Returns 0 to go on, 1
 * when no more are wanted (the callback should stop and return 0), or -1
 * with errno EINVAL (out of order) or ENOMEM. */
int nbd_extents_add(struct nbd_extents *extents, uint64_t offset, uint64_t length, uint32_t flags);

/* What a backend implements. Every data callback returns 0, or -1 with
 * errno set (EIO, ENOSPC, EPERM, EINVAL, ...); the errno becomes the NBD
 * error reply and the connection stays up. Callbacks are called from many
 * threads at once. Ranges are checked against size before any callback. */
struct nbd_backend {
    void *opaque;
    uint64_t size;
    bool read_only; /* writes, trims and zeroes are refused with EPERM */
    int (*pread)(void *opaque, void *buf, uint32_t count, uint64_t offset);
    int (*pwrite)(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua);
    int (*flush)(void *opaque);
    /* Optional: NULL means TRIM is not advertised. */
    int (*trim)(void *opaque, uint32_t count, uint64_t offset, bool fua);
    /* Optional: NULL means the server writes zeroes through pwrite. */
    int (*zero)(void *opaque, uint32_t count, uint64_t offset, bool fua);
    /* Optional: describes [offset, offset+count) from OFFSET on with
     * nbd_extents_add; it may stop early, after at least one extent. NULL
     * means the whole export is reported as data. Never claim a hole or
     * zeroes that are not known to be there. */
    int (*extents)(void *opaque, uint32_t count, uint64_t offset, struct nbd_extents *extents);
};

struct nbd_server_config {
    const char *unix_path;           /* listen here (created mode 0600, removed at stop); or NULL */
    const char *tcp_address;         /* "127.0.0.1:10809"; or NULL */
    const char *export_name;         /* the one export; any name is accepted if NULL */
    const char *description;         /* NBD_INFO_DESCRIPTION; may be NULL */
    unsigned max_connections;        /* 0 means 64; more are closed at accept */
    unsigned max_inflight;           /* per connection; 0 means 64 */
    unsigned threads_per_connection; /* request workers, each serving one request at a time
                                        (so at most max_inflight); 0 means 16 */
    uint32_t max_request;            /* largest READ/WRITE; 0 means 32 MiB */
    struct logger *log;
};

/* Starts listening and serving in background threads. NULL with one
 * sentence in ERR on failure (socket in use, bad address...). */
struct nbd_server *nbd_server_start(const struct nbd_server_config *config,
                                    const struct nbd_backend *backend, char *err, size_t errlen);

/* Serves one already-connected socket FD (e.g. one end of a socketpair) as
 * a connection of SERVER; SERVER may have no listener (both addresses NULL). */
int nbd_server_add_fd(struct nbd_server *server, int fd);

/* Stops accepting, lets in-flight requests finish, closes every
 * connection, joins all threads and frees SERVER. */
void nbd_server_stop(struct nbd_server *server);

/* The TCP port SERVER listens on (the one the kernel chose when tcp_address
 * asked for port 0), or 0 if it has no TCP listener. */
int nbd_server_tcp_port(const struct nbd_server *server);

/* Number of open client connections. */
unsigned nbd_server_connections(struct nbd_server *server);

#endif
