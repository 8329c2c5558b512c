/* SPDX-License-Identifier: MIT */
/* NBD_CMD_BLOCK_STATUS for base:allocation: the list a backend's extents
 * callback fills (cut to the request, neighbours merged, at most one
 * extent with REQ_ONE), and the whole range as data for backends without
 * the callback. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

/* Descriptors in one reply: 512 KiB of answer at most (the spec asks for no
 * more than 2^20); a client asks again from where the answer stopped. */
enum { MAX_EXTENTS = 1 << 16 };

static int append(struct nbd_extents *e, uint32_t length, uint32_t flags)
{
    if (e->count > 0 && e->list[e->count - 1].flags == flags) {
        e->list[e->count - 1].length += length; /* the sum stays within the request */
        return 0;
    }
    if (e->count == e->max)
        return 1;
    if (e->count == e->capacity) {
        size_t bigger = e->capacity ? 2 * e->capacity : 16;
        struct nbd_extent *list = realloc(e->list, bigger * sizeof *list);
        if (!list)
            return errno = ENOMEM, -1;
        e->list = list, e->capacity = bigger;
    }
    e->list[e->count++] = (struct nbd_extent){length, flags};
    return 0;
}

int nbd_extents_add(struct nbd_extents *e, uint64_t offset, uint64_t length, uint32_t flags)
{
    if (e->next >= e->end)
        return 1;
    if (length == 0)
        return 0;
    if (length > UINT64_MAX - offset || offset > e->next || (e->count > 0 && offset != e->next))
        return errno = EINVAL, -1; /* a gap, an overlap or a step back */
    uint64_t to = offset + length < e->end ? offset + length : e->end;
    if (to <= e->next)
        return 0; /* wholly before the request */
    int r = append(e, (uint32_t)(to - e->next), flags & (NBD_EXTENT_HOLE | NBD_EXTENT_ZERO));
    if (r != 0)
        return r;
    e->next = to;
    return e->next >= e->end ? 1 : 0;
}

int nbd_serve_block_status(const struct nbd_backend *b, struct nbd_extents *e,
                           const struct nbd_request *req)
{
    e->start = e->next = req->offset;
    e->end = req->offset + req->count;
    e->count = 0;
    e->max = req->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
    int r = b->extents ? b->extents(b->opaque, req->count, req->offset, e)
                       : nbd_extents_add(e, req->offset, req->count, NBD_EXTENT_DATA);
    if (r < 0)
        return -1;
    if (e->count == 0)
        return errno = EIO, -1; /* the backend described nothing */
    return 0;
}

void nbd_extents_free(struct nbd_extents *e)
{
    free(e->list);
    *e = (struct nbd_extents){0};
}
