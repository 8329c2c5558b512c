/* SPDX-License-Identifier: MIT */
/* A test-only memory backend for the NBD server: a buffer behind one lock,
 * counters of what was called, a range whose reads fail with EIO, a gate
 * that makes reads wait until several are running at once, and extents in
 * 4 KiB blocks (an all-zero block is a hole). */
#ifndef GODWIT_TEST_NBD_MEMORY_H
#define GODWIT_TEST_NBD_MEMORY_H

#include "nbd-server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct memory_disk {
    char *data; /* under lock */
    uint64_t size;
    pthread_mutex_t lock;
    uint64_t eio_offset, eio_length; /* reads touching this range fail (set before serving) */
    int read_errno;                  /* what they fail with; 0 means EIO */
    atomic_uint flushes, fua_writes, trims, zeroes;
    /* When gate_width > 1, reads wait (up to 10 s) until gate_width reads
     * are inside pread at once; gate_met says it happened. */
    unsigned gate_width;
    atomic_uint inside;
    atomic_bool gate_met;
    /* While hold is set, reads wait (up to 10 s); held counts them. */
    atomic_bool hold;
    atomic_uint held;
    atomic_bool extents_fail; /* the extents callback fails with EIO */
};

/* A zeroed disk of SIZE bytes; memory_backend fills B to serve it. */
void memory_disk_init(struct memory_disk *disk, uint64_t size);
void memory_disk_free(struct memory_disk *disk);
void memory_backend(struct memory_disk *disk, struct nbd_backend *b, bool read_only);

#endif
