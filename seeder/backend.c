/* SPDX-License-Identifier: MIT */
/* The seeder's NBD backend: the local app's reads and writes go straight to
 * the image file; every write is bracketed by the tracker so it is recorded
 * in every session while tracking, and held (or refused with EPERM) from
 * the freeze on. Block status comes from the file's holes
 * (SEEK_DATA/SEEK_HOLE): a hole is HOLE|ZERO. */
#include "seeder.h"

#include "nbd-server.h"

#include <errno.h>

static int seeder_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    struct seeder *seeder = opaque;
    return image_pread(&seeder->image, buf, count, offset);
}

/* Ends a write that ran: its whole range is marked even if it failed, as
 * part of it may have landed (or a failed FUA flush left it unsure). */
static int tracked(struct seeder *seeder, const struct gate_pass *pass, uint64_t count,
                   uint64_t offset, int result)
{
    int saved = errno;
    tracker_end_write(seeder->tracker, pass, offset, count);
    errno = saved;
    return result;
}

static int flush_if(struct seeder *seeder, bool fua, int result)
{
    return result == 0 && fua ? image_flush(&seeder->image) : result;
}

static int seeder_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    struct seeder *seeder = opaque;
    struct gate_pass pass;
    if (tracker_begin_write(seeder->tracker, count, &pass) < 0)
        return -1;
    int r = flush_if(seeder, fua, image_pwrite(&seeder->image, buf, count, offset));
    return tracked(seeder, &pass, count, offset, r);
}

static int seeder_zero(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    struct seeder *seeder = opaque;
    struct gate_pass pass;
    /* Zeroing holds no payload: it counts 0 bytes against the hold cap. */
    if (tracker_begin_write(seeder->tracker, 0, &pass) < 0)
        return -1;
    int r = flush_if(seeder, fua, image_zero(&seeder->image, count, offset));
    return tracked(seeder, &pass, count, offset, r);
}

static int seeder_flush(void *opaque)
{
    struct seeder *seeder = opaque;
    return image_flush(&seeder->image);
}

/* One run of the image as an extent of the NBD reply. */
static int add_run(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    return nbd_extents_add(arg, offset, length,
                           hole ? NBD_EXTENT_HOLE | NBD_EXTENT_ZERO : NBD_EXTENT_DATA);
}

static int seeder_extents(void *opaque, uint32_t count, uint64_t offset,
                          struct nbd_extents *extents)
{
    struct seeder *seeder = opaque;
    int r = image_describe(&seeder->image, offset, offset + count, add_run, extents);
    return r < 0 ? -1 : 0;
}

void seeder_backend(struct seeder *seeder, struct nbd_backend *backend)
{
    *backend = (struct nbd_backend){
        .opaque = seeder,
        .size = seeder->image.size,
        .pread = seeder_pread,
        .pwrite = seeder_pwrite,
        .flush = seeder_flush,
        /* A trim discards data, so the destination must see zeroes there
         * too: it is a write of zeroes as far as tracking goes. */
        .trim = seeder_zero,
        .zero = seeder_zero,
        .extents = seeder_extents,
    };
}
