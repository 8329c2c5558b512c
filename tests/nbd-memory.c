/* SPDX-License-Identifier: MIT */
/* The test memory backend (see nbd-memory.h). */
#include "nbd-memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void memory_disk_init(struct memory_disk *disk, uint64_t size)
{
    memset(disk, 0, sizeof *disk);
    disk->data = calloc(1, size);
    disk->size = size;
    pthread_mutex_init(&disk->lock, NULL);
}

void memory_disk_free(struct memory_disk *disk)
{
    free(disk->data);
    pthread_mutex_destroy(&disk->lock);
}

/* Waits until gate_width reads are inside at once, or 10 s pass. */
static void pass_gate(struct memory_disk *disk)
{
    unsigned inside = atomic_fetch_add(&disk->inside, 1) + 1;
    for (int i = 0; i < 10000 && inside < disk->gate_width && !atomic_load(&disk->gate_met); i++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        inside = atomic_load(&disk->inside);
    }
    if (inside >= disk->gate_width)
        atomic_store(&disk->gate_met, true);
    atomic_fetch_sub(&disk->inside, 1);
}

static int memory_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    struct memory_disk *disk = opaque;
    if (disk->gate_width > 1)
        pass_gate(disk);
    if (atomic_load(&disk->hold)) {
        atomic_fetch_add(&disk->held, 1);
        for (int i = 0; i < 10000 && atomic_load(&disk->hold); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (disk->eio_length && offset < disk->eio_offset + disk->eio_length &&
        offset + count > disk->eio_offset)
        return errno = disk->read_errno ? disk->read_errno : EIO, -1;
    pthread_mutex_lock(&disk->lock);
    memcpy(buf, disk->data + offset, count);
    pthread_mutex_unlock(&disk->lock);
    return 0;
}

static int memory_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    struct memory_disk *disk = opaque;
    pthread_mutex_lock(&disk->lock);
    memcpy(disk->data + offset, buf, count);
    pthread_mutex_unlock(&disk->lock);
    if (fua)
        atomic_fetch_add(&disk->fua_writes, 1);
    return 0;
}

static int memory_flush(void *opaque)
{
    struct memory_disk *disk = opaque;
    atomic_fetch_add(&disk->flushes, 1);
    return 0;
}

static int memory_clear(struct memory_disk *disk, uint32_t count, uint64_t offset, bool fua)
{
    pthread_mutex_lock(&disk->lock);
    memset(disk->data + offset, 0, count);
    pthread_mutex_unlock(&disk->lock);
    if (fua)
        atomic_fetch_add(&disk->fua_writes, 1);
    return 0;
}

static int memory_trim(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    struct memory_disk *disk = opaque;
    atomic_fetch_add(&disk->trims, 1);
    return memory_clear(disk, count, offset, fua);
}

static int memory_zero(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    struct memory_disk *disk = opaque;
    atomic_fetch_add(&disk->zeroes, 1);
    return memory_clear(disk, count, offset, fua);
}

/* Each 4 KiB block (the last may be short) is a hole if it is all zero. */
static int memory_extents(void *opaque, uint32_t count, uint64_t offset,
                          struct nbd_extents *extents)
{
    struct memory_disk *disk = opaque;
    if (atomic_load(&disk->extents_fail))
        return errno = EIO, -1;
    static const char zeroes[4096];
    int r = 0;
    pthread_mutex_lock(&disk->lock);
    for (uint64_t block = offset / 4096 * 4096; r == 0 && block < offset + count; block += 4096) {
        uint64_t len = disk->size - block < 4096 ? disk->size - block : 4096;
        bool zero = memcmp(disk->data + block, zeroes, len) == 0;
        r = nbd_extents_add(extents, block, len,
                            zero ? NBD_EXTENT_HOLE | NBD_EXTENT_ZERO : NBD_EXTENT_DATA);
    }
    pthread_mutex_unlock(&disk->lock);
    return r < 0 ? -1 : 0;
}

void memory_backend(struct memory_disk *disk, struct nbd_backend *b, bool read_only)
{
    *b = (struct nbd_backend){.opaque = disk,
                              .size = disk->size,
                              .read_only = read_only,
                              .pread = memory_pread,
                              .pwrite = memory_pwrite,
                              .flush = memory_flush,
                              .trim = memory_trim,
                              .zero = memory_zero,
                              .extents = memory_extents};
}
