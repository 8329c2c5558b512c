/* SPDX-License-Identifier: MIT */
/* The leecher's NBD backend: the destination app's view of the image.
 * Until Finalize every request waits at the gate (the image is not
 * consistent yet). After it, a read makes each chunk it touches local
 * first (pulling it on demand), and a write covers whole chunks directly
 * (no fetch) or makes a partly written chunk local first; either way the
 * chunk is then WRITTEN and no later pull overwrites it. */
#include "leecher.h"

#include "cleanup.h"
#include "nbd-server.h"

#include <errno.h>
#include <time.h>

/* Waits for Finalize to open the export; -1 (ESHUTDOWN) when stopping. */
static int pass_gate(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->lock);
    while (!l->gate_open && !l->stopping && l->state != FAILED)
        pthread_cond_wait(&l->changed, &l->lock);
    if (l->gate_open)
        return 0;
    errno = ESHUTDOWN;
    return -1;
}

static int leecher_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    struct leecher *l = opaque;
    if (pass_gate(l) < 0)
        return -1;
    if (count == 0)
        return 0;
    uint64_t first, last;
    chunk_span(&l->geo, offset, count, &first, &last);
    for (uint64_t c = first; c <= last; c++)
        if (leecher_ensure_local(l, c) < 0)
            return -1;
    return image_pread(&l->image, buf, count, offset);
}

/* A write-like operation on one chunk's part of the range. */
struct write_op {
    struct leecher *l;
    const void *buf; /* NULL: write zeroes */
    uint64_t offset;
    uint32_t len;
};

static int apply(void *arg)
{
    struct write_op *w = arg;
    if (!w->buf)
        return image_zero(&w->l->image, w->len, w->offset);
    return image_pwrite(&w->l->image, w->buf, w->len, w->offset);
}

static int write_chunk(struct leecher *l, uint64_t chunk, struct write_op *w)
{
    if (chunk_fully_covered(&l->geo, chunk, w->offset, w->len))
        return chunk_map_overwrite(l->map, chunk, apply, w);
    if (leecher_ensure_local(l, chunk) < 0) /* fetch, then write */
        return -1;
    int r = apply(w);
    if (r == 0)
        chunk_map_mark_written(l->map, chunk);
    return r;
}

/* Splits [offset, offset+count) at chunk borders. */
static int write_range(struct leecher *l, const void *buf, uint32_t count, uint64_t offset,
                       bool fua)
{
    if (pass_gate(l) < 0)
        return -1;
    uint64_t first, last;
    if (count == 0)
        return 0;
    chunk_span(&l->geo, offset, count, &first, &last);
    for (uint64_t c = first; c <= last; c++) {
        uint64_t start = chunk_offset(&l->geo, c), end = start + chunk_length(&l->geo, c);
        uint64_t from = offset > start ? offset : start;
        uint64_t to = offset + count < end ? offset + count : end;
        struct write_op w = {l, buf ? (const char *)buf + (from - offset) : NULL, from,
                             (uint32_t)(to - from)};
        if (write_chunk(l, c, &w) < 0)
            return -1;
    }
    return fua ? image_flush(&l->image) : 0;
}

static int leecher_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    return write_range(opaque, buf, count, offset, fua);
}

static int leecher_zero(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    return write_range(opaque, NULL, count, offset, fua);
}

static int leecher_flush(void *opaque)
{
    struct leecher *l = opaque;
    if (pass_gate(l) < 0)
        return -1;
    return image_flush(&l->image);
}

void leecher_backend(struct leecher *l, struct nbd_backend *backend)
{
    *backend = (struct nbd_backend){
        .opaque = l,
        .size = l->geo.size,
        .pread = leecher_pread,
        .pwrite = leecher_pwrite,
        .flush = leecher_flush,
        .trim = leecher_zero,
        .zero = leecher_zero,
    };
}
