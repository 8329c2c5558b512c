/* SPDX-License-Identifier: MIT */
/* The source side's migration state: which chunks the local app wrote
 * (after Track), the Sync generations, and the freeze at Finalize. */
#ifndef GODWIT_SEEDER_TRACKER_H
#define GODWIT_SEEDER_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

enum tracker_state { TRACKER_SERVING, TRACKER_TRACKING, TRACKER_FROZEN, TRACKER_COMPLETE };

struct tracker;

struct tracker *tracker_new(const struct chunk_geometry *geo);
void tracker_free(struct tracker *tracker);

/* Brackets one write by the local app. tracker_begin_write fails with
 * EPERM once the image is frozen; otherwise the caller writes, then calls
 * tracker_end_write with the range it wrote (COUNT 0 if the write failed),
 * which records the chunks while tracking. Finalize waits for writes in
 * between begin and end, so none lands after the freeze. */
int tracker_begin_write(struct tracker *tracker);
void tracker_end_write(struct tracker *tracker, uint64_t offset, uint64_t count);

struct image_file;
/* Flushes IMAGE unless no write ended since the last flush that succeeded
 * here; -1 with errno if the flush failed. */
int tracker_flush(struct tracker *tracker, const struct image_file *image);

/* Starts tracking; returns 1 if it had already started, 0 if not. */
int tracker_track(struct tracker *tracker);

/* A dirty list: chunk offsets in ascending order (free offsets). */
struct dirty_list {
    uint64_t *offsets;
    size_t count;
    uint64_t generation;   /* Sync: names this set */
    int already_finalized; /* Finalize: a retry */
};

/* Sync and Finalize as seeder.proto describes them. Return 0, or -1 with
 * errno: EBUSY in the wrong state (Sync: before Track or after Finalize;
 * Finalize: before Track), ENOMEM. */
int tracker_sync(struct tracker *tracker, uint64_t ack_generation, struct dirty_list *out);
int tracker_finalize(struct tracker *tracker, uint64_t ack_generation, struct dirty_list *out);

/* Complete: -1 (EBUSY) before Finalize. */
int tracker_complete(struct tracker *tracker);

struct tracker_stats {
    enum tracker_state state;
    uint64_t dirty_chunks; /* what Sync or Finalize would report now */
    double dirty_rate;     /* newly dirtied chunks per second, recent */
};
void tracker_stats(struct tracker *tracker, struct tracker_stats *stats);

#endif
