/* SPDX-License-Identifier: MIT */
/* The transmission phase, as nbdkit does it: each of a connection's
 * worker threads takes the read lock, reads one request (and a WRITE's
 * payload into its own reused buffer), lets the lock go, runs the request
 * against the backend and sends the reply under the write lock, so replies
 * go out of order as they complete. No request is handed from thread to
 * thread (no queue, no wake-up per request) and the thread that received a
 * payload writes it out. A bad request gets an error reply and the
 * connection lives on; only a broken header (no way to resync) closes it.
 * BLOCK_STATUS needs base:allocation selected in the handshake. */
#include "internal.h"

#include "cleanup.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A worker keeps a buffer up to this size for its next request. */
enum { KEEP_BUFFER = 4u << 20 };

uint32_t nbd_errno_to_wire(int err, uint16_t flags)
{
    switch (err) {
    case 0:
        return 0;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return flags & NBD_CMD_FLAG_DF ? NBD_EOVERFLOW : NBD_EINVAL;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return flags & NBD_CMD_FLAG_FAST_ZERO ? NBD_ENOTSUP : NBD_EINVAL;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

uint16_t nbd_transmission_flags(const struct nbd_connection *conn)
{
    const struct nbd_backend *b = &conn->server->backend;
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
    if (b->read_only)
        flags |= NBD_FLAG_READ_ONLY;
    if (b->trim)
        flags |= NBD_FLAG_SEND_TRIM;
    if (conn->structured)
        flags |= NBD_FLAG_SEND_DF; /* every structured READ reply is one chunk */
    return flags;
}

static int write_zeroes(const struct nbd_backend *b, uint32_t count, uint64_t offset, bool fua)
{
    if (b->zero)
        return b->zero(b->opaque, count, offset, fua);
    size_t block = count < (1u << 20) ? count : (1u << 20);
    char *zeroes = calloc(1, block ? block : 1);
    if (!zeroes)
        return errno = ENOMEM, -1;
    int r = 0;
    while (r == 0 && count > 0) {
        uint32_t n = count < block ? count : (uint32_t)block;
        r = b->pwrite(b->opaque, zeroes, n, offset, false);
        count -= n, offset += n;
    }
    free(zeroes);
    /* FUA covers every chunk: one flush after them all. */
    return r == 0 && fua && b->flush ? b->flush(b->opaque) : r;
}

/* Runs one request against the backend; returns the errno to report. */
static int execute(struct nbd_connection *conn, struct nbd_job *job)
{
    const struct nbd_backend *b = &conn->server->backend;
    const struct nbd_request *req = &job->request;
    bool fua = req->flags & NBD_CMD_FLAG_FUA;
    int r;
    errno = 0;
    switch (req->type) {
    case NBD_CMD_READ:
        r = b->pread(b->opaque, job->data, req->count, req->offset);
        break;
    case NBD_CMD_WRITE:
        r = b->pwrite(b->opaque, job->data, req->count, req->offset, fua);
        break;
    case NBD_CMD_FLUSH:
        r = b->flush ? b->flush(b->opaque) : 0;
        break;
    case NBD_CMD_TRIM:
        r = b->trim(b->opaque, req->count, req->offset, fua);
        break;
    case NBD_CMD_WRITE_ZEROES:
        r = write_zeroes(b, req->count, req->offset, fua);
        break;
    case NBD_CMD_BLOCK_STATUS:
        r = nbd_serve_block_status(b, job->extents, req);
        break;
    default:
        errno = EINVAL, r = -1;
        break;
    }
    return r == 0 ? 0 : (errno ? errno : EIO);
}

static const char *command_name(uint16_t type)
{
    static const char *names[] = {"READ", "WRITE", "DISC",         "FLUSH",
                                  "TRIM", "?",     "WRITE_ZEROES", "BLOCK_STATUS"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown command";
}

/* The command flags REQ may carry on CONN. FUA and NO_HOLE are accepted on
 * every command (clients are known to send FUA anywhere). */
static uint16_t allowed_flags(const struct nbd_connection *conn, const struct nbd_request *req)
{
    uint16_t allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
    if (req->type == NBD_CMD_READ && conn->structured)
        allowed |= NBD_CMD_FLAG_DF;
    if (req->type == NBD_CMD_BLOCK_STATUS)
        allowed |= NBD_CMD_FLAG_REQ_ONE;
    return allowed;
}

/* Why REQ cannot run on CONN, as an errno (0: it can) and one sentence in
 * WHY. */
static int check_request(const struct nbd_connection *conn, const struct nbd_request *req,
                         const char **why)
{
    const struct nbd_server *server = conn->server;
    const struct nbd_backend *b = &server->backend;
    bool writes = req->type == NBD_CMD_WRITE || req->type == NBD_CMD_TRIM ||
                  req->type == NBD_CMD_WRITE_ZEROES;
    bool ranged = writes || req->type == NBD_CMD_READ || req->type == NBD_CMD_BLOCK_STATUS;
    if (req->type > NBD_CMD_BLOCK_STATUS || req->type == 5)
        return *why = "unknown command", EINVAL;
    if (req->type == NBD_CMD_TRIM && !b->trim)
        return *why = "TRIM is not supported", EINVAL;
    if (req->type == NBD_CMD_BLOCK_STATUS && !conn->base_allocation)
        return *why = "no metadata context was negotiated", EINVAL;
    if (req->flags & ~allowed_flags(conn, req))
        return *why = "unknown command flags", EINVAL;
    if (writes && b->read_only)
        return *why = "the export is read-only", EPERM;
    if (!ranged)
        return 0;
    if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
        req->count > server->config.max_request)
        return *why = "count is larger than the maximum request", EINVAL;
    if (req->type == NBD_CMD_BLOCK_STATUS && req->count == 0)
        return *why = "block status of no bytes", EINVAL;
    if (req->offset > b->size || req->count > b->size - req->offset)
        return *why = "offset and count are out of range", writes ? ENOSPC : EINVAL;
    return 0;
}

/* Checks JOB's request; sets its error and why when it cannot run. */
static void validate(struct nbd_connection *conn, struct nbd_job *job)
{
    const struct nbd_request *req = &job->request;
    job->error = check_request(conn, req, &job->why);
    if (job->error)
        nbd_log(conn->server, LOG_DEBUG,
                "invalid NBD request: %s offset %" PRIu64 " count %" PRIu32 ": %s",
                command_name(req->type), req->offset, req->count, job->why);
}

/* A worker's own buffer for READ data and WRITE payloads, reused from one
 * request to the next: no allocation and no fresh pages per request. */
struct buffer {
    void *data;
    size_t size;
};

static void *buffer_get(struct buffer *buf, size_t count)
{
    if (count > buf->size) {
        void *bigger = realloc(buf->data, count);
        if (!bigger)
            return NULL;
        buf->data = bigger, buf->size = count;
    }
    return buf->data;
}

/* Gives back a buffer that a rare huge request grew past KEEP_BUFFER. */
static void buffer_shrink(struct buffer *buf)
{
    if (buf->size > KEEP_BUFFER) {
        free(buf->data);
        buf->data = NULL, buf->size = 0;
    }
}

/* Reads a WRITE's payload into BUF, or skips it when JOB already failed
 * (then an absurd payload, more than 4 x max_request, closes the
 * connection: it cannot be skipped in reasonable time). 0 to go on, -1 to
 * close. */
static int read_payload(struct nbd_connection *conn, struct nbd_job *job, struct buffer *buf)
{
    uint32_t count = job->request.count, max = conn->server->config.max_request;
    if (job->error)
        return count <= 4ull * max ? nbd_discard(conn->fd, count) : -1;
    job->data = buffer_get(buf, count ? count : 1);
    if (!job->data) {
        job->error = ENOMEM;
        job->why = "no memory for the payload";
        return nbd_discard(conn->fd, count);
    }
    return nbd_read_full(conn->fd, job->data, count);
}

/* Reads and validates one request header into JOB (EXTENTS is the
 * worker's block status list); -1 to close. */
static int read_header(struct nbd_connection *conn, struct nbd_job *job,
                       struct nbd_extents *extents)
{
    struct nbd_request raw;
    if (nbd_read_full(conn->fd, &raw, sizeof raw) < 0)
        return -1;
    if (be32toh(raw.magic) != NBD_REQUEST_MAGIC) {
        nbd_log(conn->server, LOG_WARN, "NBD request with a bad magic; closing the connection");
        return -1;
    }
    *job = (struct nbd_job){.request = {.flags = be16toh(raw.flags),
                                        .type = be16toh(raw.type),
                                        .handle = raw.handle,
                                        .offset = be64toh(raw.offset),
                                        .count = be32toh(raw.count)},
                            .extents = extents};
    validate(conn, job);
    return 0;
}

/* Reads the next request (and a WRITE's payload into BUF) into JOB under
 * the read lock; true if JOB is to be served. Sets closing when nothing
 * more can be read: end of stream, a broken header, a payload cut short or
 * too large to skip, or DISC. A request cut short runs nothing; one
 * already refused still gets its error reply before the connection
 * closes. */
static bool next_request(struct nbd_connection *conn, struct nbd_job *job, struct buffer *buf,
                         struct nbd_extents *extents)
{
    LOCK_FOR_SCOPE(&conn->read_lock);
    if (conn->closing)
        return false;
    if (read_header(conn, job, extents) < 0) {
        conn->closing = true;
        return false;
    }
    if (job->request.type == NBD_CMD_DISC && !job->error) {
        conn->closing = true;
        return false;
    }
    if (job->request.type == NBD_CMD_WRITE && read_payload(conn, job, buf) < 0) {
        conn->closing = true;
        return job->error != 0;
    }
    return true;
}

/* Runs JOB (or just reports its validation error) and replies. */
static void serve_job(struct nbd_connection *conn, struct nbd_job *job, struct buffer *buf)
{
    int error = job->error;
    if (!error && job->request.type == NBD_CMD_READ &&
        !(job->data = buffer_get(buf, job->request.count ? job->request.count : 1)))
        error = ENOMEM;
    if (!error)
        error = execute(conn, job);
    if (nbd_send_reply(conn, job, error) < 0)
        shutdown(conn->fd, SHUT_RDWR); /* the client is gone: wake the reading worker */
}

static void *worker(void *arg)
{
    struct nbd_connection *conn = arg;
    struct buffer buf = {NULL, 0};
    struct nbd_extents extents = {0};
    struct nbd_job job;
    while (next_request(conn, &job, &buf, &extents)) {
        serve_job(conn, &job, &buf);
        buffer_shrink(&buf);
    }
    free(buf.data);
    nbd_extents_free(&extents);
    return NULL;
}

/* Starts up to WANTED - 1 more workers into THREADS; returns how many. */
static unsigned start_workers(struct nbd_connection *conn, pthread_t *threads, unsigned wanted)
{
    unsigned n = 0;
    int err = threads ? 0 : ENOMEM;
    while (!err && n + 1 < wanted && !(err = pthread_create(&threads[n], NULL, worker, conn)))
        n++;
    if (err)
        nbd_log(conn->server, LOG_WARN, "NBD connection runs %u of its %u request workers: %s",
                n + 1, wanted, strerror(err));
    return n;
}

/* The calling thread is worker 0; the others join it until the client
 * disconnects or the server stops, and every reply has gone out. Requests
 * in flight never exceed the workers, so there are at most max_inflight. */
void nbd_serve_requests(struct nbd_connection *conn)
{
    const struct nbd_server_config *c = &conn->server->config;
    unsigned wanted =
        c->threads_per_connection < c->max_inflight ? c->threads_per_connection : c->max_inflight;
    pthread_t *threads = calloc(wanted, sizeof *threads);
    unsigned started = start_workers(conn, threads, wanted);
    worker(conn);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}
