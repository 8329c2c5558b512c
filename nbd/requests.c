/* The transmission phase: the connection's reader thread validates each
 * request and queues it; a few worker threads run it against the backend
 * and send the reply under the write lock, so replies go out of order as
 * they complete. A bad request gets an error reply and the connection
 * lives on; only a broken header (no way to resync) closes it. */
#include "internal.h"

#include "cleanup.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One request. The reader builds it, then it belongs to conn->queue (under
 * conn->lock) until a worker takes it, then to that worker alone. */
struct nbd_job {
    struct nbd_job *next;
    struct nbd_request request; /* host byte order */
    void *data;                 /* WRITE: the payload (READs use the worker's buffer) */
    int error;                  /* set by validation: reply with this errno, run nothing */
};

static void free_job(struct nbd_job *job)
{
    free(job->data);
    free(job);
}

uint32_t nbd_errno_to_wire(int err)
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
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

uint16_t nbd_transmission_flags(const struct nbd_server *server)
{
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
    if (server->backend.read_only)
        flags |= NBD_FLAG_READ_ONLY;
    if (server->backend.trim)
        flags |= NBD_FLAG_SEND_TRIM;
    return flags;
}

/* Sends the reply to JOB; a successful READ carries DATA. */
static int send_reply(struct nbd_connection *conn, const struct nbd_job *job, int error,
                      const void *data)
{
    struct nbd_simple_reply reply = {htobe32(NBD_SIMPLE_REPLY_MAGIC),
                                     htobe32(nbd_errno_to_wire(error)),
                                     job->request.handle}; /* handle is opaque: echo raw */
    bool with_data = job->request.type == NBD_CMD_READ && error == 0 && job->request.count > 0;
    LOCK_FOR_SCOPE(&conn->write_lock);
    if (!with_data)
        return nbd_write_full(conn->fd, &reply, sizeof reply);
    if (nbd_write_more(conn->fd, &reply, sizeof reply) < 0)
        return -1;
    return nbd_write_full(conn->fd, data, job->request.count);
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
static int execute(struct nbd_connection *conn, struct nbd_job *job, void *read_buf)
{
    const struct nbd_backend *b = &conn->server->backend;
    const struct nbd_request *req = &job->request;
    bool fua = req->flags & NBD_CMD_FLAG_FUA;
    int r;
    errno = 0;
    switch (req->type) {
    case NBD_CMD_READ:
        r = b->pread(b->opaque, read_buf, req->count, req->offset);
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
    default:
        errno = EINVAL, r = -1;
        break;
    }
    return r == 0 ? 0 : (errno ? errno : EIO);
}

/* A worker's own buffer for READ data, grown to the largest read seen
 * (at most max_request) and reused: no allocation per request. */
struct read_buffer {
    void *data;
    size_t size;
};

static void *read_buffer_get(struct read_buffer *rb, size_t count)
{
    if (count > rb->size) {
        void *bigger = realloc(rb->data, count);
        if (!bigger)
            return NULL;
        rb->data = bigger, rb->size = count;
    }
    return rb->data;
}

/* Runs JOB (or just reports its validation error) and replies. */
static void serve_job(struct nbd_connection *conn, struct nbd_job *job, struct read_buffer *rb)
{
    void *read_buf = NULL;
    int error = job->error;
    if (!error && job->request.type == NBD_CMD_READ &&
        !(read_buf = read_buffer_get(rb, job->request.count ? job->request.count : 1)))
        error = ENOMEM;
    if (!error)
        error = execute(conn, job, read_buf);
    if (send_reply(conn, job, error, read_buf) < 0)
        shutdown(conn->fd, SHUT_RDWR); /* the client is gone: wake the reader */
}

static void *worker(void *arg)
{
    struct nbd_connection *conn = arg;
    struct read_buffer rb = {NULL, 0};
    for (;;) {
        pthread_mutex_lock(&conn->lock);
        while (!conn->queue_head && !conn->closing)
            pthread_cond_wait(&conn->work, &conn->lock);
        struct nbd_job *job = conn->queue_head;
        if (job) {
            conn->queue_head = job->next;
            if (!conn->queue_head)
                conn->queue_tail = NULL;
        }
        pthread_mutex_unlock(&conn->lock);
        if (!job)
            break;
        serve_job(conn, job, &rb);
        free_job(job);
        pthread_mutex_lock(&conn->lock);
        conn->inflight--;
        pthread_cond_signal(&conn->room);
        pthread_mutex_unlock(&conn->lock);
    }
    free(rb.data);
    return NULL;
}

static const char *command_name(uint16_t type)
{
    static const char *names[] = {"READ", "WRITE", "DISC", "FLUSH", "TRIM", "?", "WRITE_ZEROES"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown command";
}

/* Why REQ cannot run, as an errno (0: it can) and one sentence in WHY. */
static int check_request(const struct nbd_server *server, const struct nbd_request *req,
                         const char **why)
{
    const struct nbd_backend *b = &server->backend;
    bool writes = req->type == NBD_CMD_WRITE || req->type == NBD_CMD_TRIM ||
                  req->type == NBD_CMD_WRITE_ZEROES;
    bool ranged = writes || req->type == NBD_CMD_READ;
    if (req->type > NBD_CMD_WRITE_ZEROES || req->type == 5)
        return *why = "unknown command", EINVAL;
    if (req->type == NBD_CMD_TRIM && !b->trim)
        return *why = "TRIM is not supported", EINVAL;
    if (req->flags & ~(NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE))
        return *why = "unknown command flags", EINVAL;
    if (writes && b->read_only)
        return *why = "the export is read-only", EPERM;
    if (!ranged)
        return 0;
    if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
        req->count > server->config.max_request)
        return *why = "count is larger than the maximum request", EINVAL;
    if (req->offset > b->size || req->count > b->size - req->offset)
        return *why = "offset and count are out of range", writes ? ENOSPC : EINVAL;
    return 0;
}

static int validate(struct nbd_server *server, const struct nbd_request *req)
{
    const char *why = NULL;
    int err = check_request(server, req, &why);
    if (err)
        nbd_log(server, LOG_DEBUG,
                "invalid NBD request: %s offset %" PRIu64 " count %" PRIu32 ": %s",
                command_name(req->type), req->offset, req->count, why);
    return err;
}

static void enqueue(struct nbd_connection *conn, struct nbd_job *job)
{
    pthread_mutex_lock(&conn->lock);
    while (conn->inflight >= conn->server->config.max_inflight)
        pthread_cond_wait(&conn->room, &conn->lock);
    conn->inflight++;
    *(conn->queue_tail ? &conn->queue_tail->next : &conn->queue_head) = job;
    conn->queue_tail = job;
    pthread_cond_signal(&conn->work);
    pthread_mutex_unlock(&conn->lock);
}

/* Reads a WRITE's payload into JOB, or skips it when JOB already failed
 * and the payload is too large to buffer (then an absurd payload, more
 * than 4 x max_request, closes the connection: it cannot be skipped in
 * reasonable time). 0 to go on, -1 to close. */
static int read_payload(struct nbd_connection *conn, struct nbd_job *job)
{
    uint32_t count = job->request.count, max = conn->server->config.max_request;
    if (job->error && count > max)
        return count <= 4ull * max ? nbd_discard(conn->fd, count) : -1;
    job->data = malloc(count ? count : 1);
    if (!job->data) {
        job->error = ENOMEM;
        return nbd_discard(conn->fd, count);
    }
    return nbd_read_full(conn->fd, job->data, count);
}

/* Reads one request (and a WRITE's payload) into *OUT; 0 to go on, -1 to
 * close. *OUT may be set even on -1: it still deserves a reply. */
static int read_request(struct nbd_connection *conn, struct nbd_job **out)
{
    struct nbd_request raw;
    if (nbd_read_full(conn->fd, &raw, sizeof raw) < 0)
        return -1;
    if (be32toh(raw.magic) != NBD_REQUEST_MAGIC) {
        nbd_log(conn->server, LOG_WARN, "NBD request with a bad magic; closing the connection");
        return -1;
    }
    struct nbd_job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->request = (struct nbd_request){.flags = be16toh(raw.flags),
                                        .type = be16toh(raw.type),
                                        .handle = raw.handle,
                                        .offset = be64toh(raw.offset),
                                        .count = be32toh(raw.count)};
    job->error = validate(conn->server, &job->request);
    *out = job;
    if (job->request.type == NBD_CMD_WRITE)
        return read_payload(conn, job);
    return 0;
}

/* Starts the workers; false if not even one could start. */
static bool start_workers(struct nbd_connection *conn)
{
    unsigned wanted = conn->server->config.threads_per_connection;
    conn->workers = calloc(wanted, sizeof *conn->workers);
    if (!conn->workers)
        return false;
    while (conn->n_workers < wanted &&
           pthread_create(&conn->workers[conn->n_workers], NULL, worker, conn) == 0)
        conn->n_workers++;
    return conn->n_workers > 0;
}

/* Waits for in-flight requests, then ends the workers. */
static void stop_workers(struct nbd_connection *conn)
{
    pthread_mutex_lock(&conn->lock);
    while (conn->inflight > 0)
        pthread_cond_wait(&conn->room, &conn->lock);
    conn->closing = true;
    pthread_cond_broadcast(&conn->work);
    pthread_mutex_unlock(&conn->lock);
    for (unsigned i = 0; i < conn->n_workers; i++)
        pthread_join(conn->workers[i], NULL);
    free(conn->workers);
}

void nbd_serve_requests(struct nbd_connection *conn)
{
    if (!start_workers(conn)) {
        nbd_log(conn->server, LOG_WARN, "NBD connection closed: cannot start its workers");
        stop_workers(conn);
        return;
    }
    for (;;) {
        struct nbd_job *job = NULL;
        int r = read_request(conn, &job);
        bool disconnect = job && job->request.type == NBD_CMD_DISC && !job->error;
        /* A request cut short runs nothing; one already refused still gets
         * its error reply before the connection closes. */
        if (job && (disconnect || (r < 0 && !job->error)))
            free_job(job);
        else if (job)
            enqueue(conn, job);
        if (r < 0 || disconnect)
            break;
    }
    stop_workers(conn);
}
