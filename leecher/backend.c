/* SPDX-License-Identifier: MIT */
/* The leecher's NBD backend: the destination app's view of the image.
 * Until Finalize every request waits at the gate (the image is not
 * consistent yet). After it, a read makes the pages it touches current
 * first (pulling only those on demand, on-demand.c), and a write covers whole chunks directly
 * (no fetch) or makes a partly written chunk local first; either way the
 * chunk is then WRITTEN and no later pull overwrites it. Block status
 * (after Finalize too) tells holes only where the chunk is local, from the
 * local file's holes; a chunk still to be pulled is reported as data. */
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
    if (leecher_ensure_range(l, offset, count) < 0) /* only the pages read */
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

/* Writes one chunk's part; the chunk is then WRITTEN, and the next flush
 * records it in the state file (state_file_note_written). */
static int write_chunk(struct leecher *l, uint64_t chunk, struct write_op *w)
{
    int r;
    if (chunk_fully_covered(&l->geo, chunk, w->offset, w->len)) {
        r = chunk_map_overwrite(l->map, chunk, apply, w);
    } else {
        if (leecher_ensure_local(l, chunk) < 0) /* fetch, then write */
            return -1;
        /* WRITTEN before the bytes change (even a failed write may land in
         * part): --verify skips the chunk rather than see it half-written. */
        chunk_map_mark_written(l->map, chunk);
        r = apply(w);
    }
    state_file_note_written(l, chunk); /* even a failed write may have landed in part */
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
    return fua ? state_file_persist_writes(l) : 0;
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
    return state_file_persist_writes(l);
}

/* One run of the local file as an extent of the NBD reply. */
static int add_run(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    return nbd_extents_add(arg, offset, length,
                           hole ? NBD_EXTENT_HOLE | NBD_EXTENT_ZERO : NBD_EXTENT_DATA);
}

static bool chunk_is_local(struct leecher *l, uint64_t chunk)
{
    return chunk_state_is_local(chunk_map_state(l->map, chunk));
}

/* Chunks [first, last] were all LOCAL (they stay so once the gate is
 * open) or all not: the local file's holes, or data (a remote chunk's bytes
 * are not here to look at; one pulled meanwhile is data or zeroes, so data
 * is still true). */
static int describe_chunks(struct leecher *l, bool local, uint64_t first, uint64_t last,
                           uint64_t from, uint64_t to, struct nbd_extents *extents)
{
    uint64_t start = chunk_offset(&l->geo, first);
    uint64_t end = chunk_offset(&l->geo, last) + chunk_length(&l->geo, last);
    from = from > start ? from : start;
    to = to < end ? to : end;
    if (local)
        return image_describe(&l->image, from, to, add_run, extents);
    return nbd_extents_add(extents, from, to - from, NBD_EXTENT_DATA);
}

static int leecher_extents(void *opaque, uint32_t count, uint64_t offset,
                           struct nbd_extents *extents)
{
    struct leecher *l = opaque;
    if (pass_gate(l) < 0)
        return -1;
    uint64_t first, last;
    chunk_span(&l->geo, offset, count, &first, &last);
    for (uint64_t c = first; c <= last;) {
        bool local = chunk_is_local(l, c);
        uint64_t run = c + 1; /* the next chunk whose locality differs */
        while (run <= last && chunk_is_local(l, run) == local)
            run++;
        int r = describe_chunks(l, local, c, run - 1, offset, offset + count, extents);
        if (r != 0)
            return r < 0 ? -1 : 0;
        c = run;
    }
    return 0;
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
        .extents = leecher_extents,
    };
}
