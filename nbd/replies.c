/* SPDX-License-Identifier: MIT */
/* Replies in the transmission phase. Without structured replies every
 * request gets a simple reply (a READ's data after it). With them, a READ
 * gets one OFFSET_DATA chunk (so NBD_CMD_FLAG_DF always holds), a
 * BLOCK_STATUS one BLOCK_STATUS chunk for base:allocation, any error an
 * ERROR chunk with a sentence, and the other successes a simple reply (the
 * spec allows it for replies without payload). Each reply goes out whole
 * under the write lock, so replies never mix. */
#include "internal.h"

#include "cleanup.h"

#include <string.h>

enum { MAX_MESSAGE = 256 };

static struct nbd_structured_reply chunk_header(const struct nbd_job *job, uint16_t type,
                                                uint32_t length)
{
    return (struct nbd_structured_reply){htobe32(NBD_STRUCTURED_REPLY_MAGIC),
                                         htobe16(NBD_REPLY_FLAG_DONE), htobe16(type),
                                         job->request.handle, htobe32(length)};
}

static int send_simple(struct nbd_connection *conn, const struct nbd_job *job, int error)
{
    struct nbd_simple_reply reply = {htobe32(NBD_SIMPLE_REPLY_MAGIC),
                                     htobe32(nbd_errno_to_wire(error, job->request.flags)),
                                     job->request.handle}; /* handle is opaque: echo raw */
    bool with_data = job->request.type == NBD_CMD_READ && error == 0 && job->request.count > 0;
    LOCK_FOR_SCOPE(&conn->write_lock);
    if (!with_data)
        return nbd_write_full(conn->fd, &reply, sizeof reply);
    if (nbd_write_more(conn->fd, &reply, sizeof reply) < 0)
        return -1;
    return nbd_write_full(conn->fd, job->data, job->request.count);
}

/* An ERROR chunk: the NBD error and one sentence for the user. */
static int send_error(struct nbd_connection *conn, const struct nbd_job *job, int error)
{
    const char *text = job->why ? job->why : strerrordesc_np(error);
    size_t len = strnlen(text ? text : "", MAX_MESSAGE);
    struct {
        struct nbd_structured_reply header;
        uint32_t error;
        uint16_t length;
        char message[MAX_MESSAGE];
    } __attribute__((packed))
    chunk = {chunk_header(job, NBD_REPLY_TYPE_ERROR, (uint32_t)(6 + len)),
             htobe32(nbd_errno_to_wire(error, job->request.flags)), htobe16((uint16_t)len), ""};
    memcpy(chunk.message, text ? text : "", len);
    LOCK_FOR_SCOPE(&conn->write_lock);
    return nbd_write_full(conn->fd, &chunk, sizeof chunk - MAX_MESSAGE + len);
}

/* A READ's data as one OFFSET_DATA chunk; an empty READ gets NONE. */
static int send_read(struct nbd_connection *conn, const struct nbd_job *job)
{
    uint32_t count = job->request.count;
    if (count == 0) {
        struct nbd_structured_reply none = chunk_header(job, NBD_REPLY_TYPE_NONE, 0);
        LOCK_FOR_SCOPE(&conn->write_lock);
        return nbd_write_full(conn->fd, &none, sizeof none);
    }
    struct {
        struct nbd_structured_reply header;
        uint64_t offset;
    } __attribute__((packed)) chunk = {chunk_header(job, NBD_REPLY_TYPE_OFFSET_DATA, 8 + count),
                                       htobe64(job->request.offset)};
    LOCK_FOR_SCOPE(&conn->write_lock);
    if (nbd_write_more(conn->fd, &chunk, sizeof chunk) < 0)
        return -1;
    return nbd_write_full(conn->fd, job->data, count);
}

/* The base:allocation extents as one BLOCK_STATUS chunk. The list is the
 * worker's own and is refilled for its next request, so it is turned to
 * wire order in place. */
static int send_block_status(struct nbd_connection *conn, const struct nbd_job *job)
{
    struct nbd_extents *e = job->extents;
    size_t bytes = e->count * sizeof *e->list;
    for (size_t i = 0; i < e->count; i++)
        e->list[i] = (struct nbd_extent){htobe32(e->list[i].length), htobe32(e->list[i].flags)};
    struct {
        struct nbd_structured_reply header;
        uint32_t context;
    } __attribute__((packed))
    chunk = {chunk_header(job, NBD_REPLY_TYPE_BLOCK_STATUS, (uint32_t)(4 + bytes)),
             htobe32(NBD_BASE_ALLOCATION_ID)};
    LOCK_FOR_SCOPE(&conn->write_lock);
    if (nbd_write_more(conn->fd, &chunk, sizeof chunk) < 0)
        return -1;
    return nbd_write_full(conn->fd, e->list, bytes);
}

int nbd_send_reply(struct nbd_connection *conn, const struct nbd_job *job, int error)
{
    if (!conn->structured)
        return send_simple(conn, job, error);
    if (error)
        return send_error(conn, job, error);
    if (job->request.type == NBD_CMD_READ)
        return send_read(conn, job);
    if (job->request.type == NBD_CMD_BLOCK_STATUS)
        return send_block_status(conn, job);
    return send_simple(conn, job, 0);
}
