/* SPDX-License-Identifier: MIT */
/* ReadAt with zero ranges (holes are not read, zero chunks not sent),
 * compression, or both; the checksum, if asked, is fed piece by piece as
 * the pieces are read. */
#include "zero-read.h"

#include "compression.h"
#include "proto-wire.h"
#include "read-checksum.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The pieces of one read: chunk-sized, the first and last cut to it. */
struct pieces {
    const struct chunk_geometry *geo;
    uint64_t offset, end;
    size_t count;
    bool *has_data; /* per piece: the image holds data somewhere in it */
};

static size_t piece_of(const struct pieces *p, uint64_t offset)
{
    return (size_t)(offset / p->geo->chunk_size - p->offset / p->geo->chunk_size);
}

static uint64_t piece_start(const struct pieces *p, size_t i)
{
    uint64_t start = (p->offset / p->geo->chunk_size + i) * p->geo->chunk_size;
    return start > p->offset ? start : p->offset;
}

static uint64_t piece_end(const struct pieces *p, size_t i)
{
    uint64_t end = (p->offset / p->geo->chunk_size + i + 1) * p->geo->chunk_size;
    return end < p->end ? end : p->end;
}

static int mark_data(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    struct pieces *p = arg;
    if (!hole)
        for (size_t i = piece_of(p, offset); i <= piece_of(p, offset + length - 1); i++)
            p->has_data[i] = true;
    return 0;
}

/* All LEN bytes at P are zero: the first 16 by hand, the rest by comparing
 * the buffer with itself 16 bytes on (memcmp is vectorised). */
static bool all_zero(const uint8_t *p, size_t len)
{
    size_t head = len < 16 ? len : 16;
    for (size_t i = 0; i < head; i++)
        if (p[i])
            return false;
    return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

/* Ranges so far; a zero piece right after the last range extends it. */
struct ranges {
    struct wire_zero_range *list;
    size_t n;
};

static void add_zero(struct ranges *r, uint64_t offset, uint64_t length)
{
    if (r->n && r->list[r->n - 1].offset + r->list[r->n - 1].length == offset)
        r->list[r->n - 1].length += length;
    else
        r->list[r->n++] = (struct wire_zero_range){offset, length};
}

/* Reads pieces [FIRST, LAST] (all with data) to OUT, drops those that are
 * all zeroes if ZERO_RANGES, feeds them to SUM (if not NULL) in order;
 * returns the bytes kept, or -1. */
static ssize_t read_run(const struct image_file *image, const struct pieces *p, size_t first,
                        size_t last, uint8_t *out, struct ranges *r, bool zero_ranges,
                        struct read_checksum *sum)
{
    uint64_t start = piece_start(p, first), end = piece_end(p, last);
    if (image_pread(image, out, (size_t)(end - start), start) < 0)
        return -1;
    if (!zero_ranges) {
        if (sum)
            read_checksum_data(sum, out, (size_t)(end - start));
        return (ssize_t)(end - start);
    }
    size_t kept = 0;
    for (size_t i = first; i <= last; i++) {
        uint64_t at = piece_start(p, i), len = piece_end(p, i) - at;
        uint8_t *bytes = out + (at - start);
        if (all_zero(bytes, (size_t)len)) {
            add_zero(r, at, len);
            if (sum)
                read_checksum_zeros(sum, len);
            continue;
        }
        if (sum)
            read_checksum_data(sum, bytes, (size_t)len);
        if (out + kept != bytes)
            memmove(out + kept, bytes, (size_t)len);
        kept += (size_t)len;
    }
    return (ssize_t)kept;
}

/* Replaces REPLY (KEPT bytes of data so far) by one whose data is those
 * bytes compressed with C, if that saves enough (compressor_run); *SENT: the data's
 * bytes either way. */
static void compress_reply(struct compressor *c, struct wire_sparse_reply *reply, size_t kept,
                           size_t *sent)
{
    *sent = kept;
    if (kept == 0)
        return;
    struct wire_sparse_reply packed;
    size_t bound = compressor_bound(kept);
    uint8_t *out = wire_sparse_begin(&packed, bound, reply->max_ranges);
    const uint8_t *in = GRPC_SLICE_START_PTR(reply->slice) + WIRE_READ_AT_HEADER_MAX;
    size_t n = compressor_run(c, in, kept, out, bound);
    if (n == 0) { /* it does not shrink (or cannot be compressed): as it is */
        grpc_slice_unref(packed.slice);
        return;
    }
    packed.encoding = WIRE_ENCODING_ZSTD, packed.decoded_length = kept;
    grpc_slice_unref(reply->slice);
    *reply = packed;
    *sent = n;
}

int zero_read(const struct image_file *image, const struct chunk_geometry *geo, uint64_t offset,
              uint32_t length, const struct read_mode *mode, grpc_slice *slice,
              struct read_sizes *sizes)
{
    struct pieces p = {geo, offset, offset + length, 0, NULL};
    struct read_checksum checksum, *sum = mode->checksum ? &checksum : NULL;
    p.count = piece_of(&p, p.end - 1) + 1;
    struct ranges r = {calloc(p.count, sizeof *r.list), 0};
    p.has_data = calloc(p.count, sizeof *p.has_data);
    if (!r.list || !p.has_data) {
        free(r.list), free(p.has_data);
        return errno = ENOMEM, -1;
    }
    /* Without zero ranges, or if the image cannot tell: all data. */
    if (!mode->zero_ranges || image_describe(image, p.offset, p.end, mark_data, &p) < 0)
        memset(p.has_data, 1, p.count * sizeof *p.has_data);
    struct wire_sparse_reply reply;
    uint8_t *data = wire_sparse_begin(&reply, length, p.count);
    if (sum)
        read_checksum_begin(sum);
    size_t kept = 0;
    for (size_t i = 0; i < p.count;) {
        size_t last = i;
        if (!p.has_data[i]) {
            uint64_t len = piece_end(&p, i) - piece_start(&p, i);
            add_zero(&r, piece_start(&p, i), len);
            if (sum)
                read_checksum_zeros(sum, len);
            i++;
            continue;
        }
        while (last + 1 < p.count && p.has_data[last + 1])
            last++;
        ssize_t got = read_run(image, &p, i, last, data + kept, &r, mode->zero_ranges, sum);
        if (got < 0) {
            int err = errno;
            grpc_slice_unref(reply.slice);
            free(r.list), free(p.has_data);
            return errno = err, -1;
        }
        kept += (size_t)got;
        i = last + 1;
    }
    uint64_t digest = sum ? read_checksum_end(sum) : 0; /* of the bytes, not the frame */
    size_t sent = kept;
    if (mode->compressor)
        compress_reply(mode->compressor, &reply, kept, &sent);
    *slice = wire_sparse_end(&reply, sent, r.list, r.n, sum ? &digest : NULL);
    *sizes = (struct read_sizes){kept, sent};
    free(r.list), free(p.has_data);
    return 0;
}
