/* SPDX-License-Identifier: MIT */
/* Migration state of the source side. Writes mark chunks in an atomic
 * dirty set after they land; Sync swaps the set out word by word; Finalize
 * takes the write side of a rwlock that every write holds shared, so the
 * freeze waits for writes in flight and no write lands after it. */
#include "tracker.h"

#include "cleanup.h"
#include "dirty-set.h"
#include "image-file.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct tracker {
    struct chunk_geometry geo;

    /* Held shared by each local write for its whole duration, exclusively
     * by Track and Finalize to change state. */
    pthread_rwlock_t write_gate;
    _Atomic int state; /* enum tracker_state; changed under write_gate (exclusive) */

    /* Lock-free: marked by writers, swapped out by Sync/Finalize. */
    struct dirty_set *dirty;
    _Atomic bool unflushed;         /* set by each write, cleared by tracker_flush */
    _Atomic uint64_t dirtied_total; /* chunks newly marked, ever (for the rate) */

    /* Everything below is owned by sync_lock. */
    pthread_mutex_t sync_lock;
    struct dirty_set *pending; /* last set returned by Sync, not acknowledged yet */
    uint64_t generation;       /* of pending */
    struct dirty_list frozen;  /* the answer of Finalize, kept for retries */
    bool frozen_ready;         /* frozen holds the answer (listing may fail: ENOMEM) */
    double rate;               /* last computed dirty rate */
    uint64_t rate_total;       /* dirtied_total at rate_time */
    struct timespec rate_time;
};

struct tracker *tracker_new(const struct chunk_geometry *geo)
{
    struct tracker *tracker = calloc(1, sizeof *tracker);
    if (!tracker)
        return NULL;
    tracker->geo = *geo;
    tracker->dirty = dirty_set_new(geo->chunks);
    tracker->pending = dirty_set_new(geo->chunks);
    if (!tracker->dirty || !tracker->pending) {
        tracker_free(tracker);
        return NULL;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&tracker->write_gate, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&tracker->sync_lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &tracker->rate_time);
    atomic_init(&tracker->state, TRACKER_SERVING);
    atomic_init(&tracker->unflushed, true); /* the file may hold writes from before we started */
    return tracker;
}

void tracker_free(struct tracker *tracker)
{
    if (!tracker)
        return;
    dirty_set_free(tracker->dirty);
    dirty_set_free(tracker->pending);
    free(tracker->frozen.offsets);
    pthread_rwlock_destroy(&tracker->write_gate);
    pthread_mutex_destroy(&tracker->sync_lock);
    free(tracker);
}

int tracker_begin_write(struct tracker *tracker)
{
    pthread_rwlock_rdlock(&tracker->write_gate);
    if (atomic_load(&tracker->state) >= TRACKER_FROZEN) {
        pthread_rwlock_unlock(&tracker->write_gate);
        errno = EPERM;
        return -1;
    }
    return 0;
}

void tracker_end_write(struct tracker *tracker, uint64_t offset, uint64_t count)
{
    /* Mark after the data landed: a Sync between the write and the mark
     * reports the chunk next time; marking first could lose it. */
    if (count > 0 && atomic_load(&tracker->state) == TRACKER_TRACKING) {
        uint64_t first, last;
        chunk_span(&tracker->geo, offset, count, &first, &last);
        uint64_t fresh = dirty_set_mark_range(tracker->dirty, first, last);
        atomic_fetch_add(&tracker->dirtied_total, fresh);
    }
    atomic_store(&tracker->unflushed, true); /* even a failed write may have landed in part */
    pthread_rwlock_unlock(&tracker->write_gate);
}

int tracker_flush(struct tracker *tracker, const struct image_file *image)
{
    /* A clean image costs nothing to flush here: fdatasync of a large clean
     * file still walks its page cache, which made Finalize's fixed cost grow
     * with the image size. A write that lands after the exchange sets the
     * flag again, so the next flush covers it. */
    if (!atomic_exchange(&tracker->unflushed, false))
        return 0;
    if (image_flush(image) == 0)
        return 0;
    atomic_store(&tracker->unflushed, true);
    return -1;
}

int tracker_track(struct tracker *tracker)
{
    pthread_rwlock_wrlock(&tracker->write_gate);
    int state = atomic_load(&tracker->state);
    if (state == TRACKER_SERVING)
        atomic_store(&tracker->state, TRACKER_TRACKING);
    pthread_rwlock_unlock(&tracker->write_gate);
    return state != TRACKER_SERVING;
}

/* Lists SET as chunk offsets into OUT. Caller holds sync_lock. */
static int list_offsets(const struct tracker *tracker, const struct dirty_set *set,
                        struct dirty_list *out)
{
    size_t count = (size_t)dirty_set_count(set);
    out->offsets = malloc((count ? count : 1) * sizeof *out->offsets);
    if (!out->offsets) {
        errno = ENOMEM;
        return -1;
    }
    out->count = dirty_set_list(set, out->offsets, count);
    for (size_t i = 0; i < out->count; i++)
        out->offsets[i] = chunk_offset(&tracker->geo, out->offsets[i]);
    return 0;
}

int tracker_sync(struct tracker *tracker, uint64_t ack_generation, struct dirty_list *out)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    if (atomic_load(&tracker->state) != TRACKER_TRACKING) {
        errno = EBUSY;
        return -1;
    }
    if (ack_generation != 0 && ack_generation == tracker->generation)
        dirty_set_clear(tracker->pending);
    dirty_set_take(tracker->dirty, tracker->pending);
    if (list_offsets(tracker, tracker->pending, out) < 0)
        return -1;
    out->generation = ++tracker->generation;
    out->already_finalized = 0;
    return 0;
}

/* Copies the kept Finalize answer into OUT. Caller holds sync_lock. */
static int copy_frozen(const struct tracker *tracker, struct dirty_list *out)
{
    *out = tracker->frozen;
    out->offsets = malloc((out->count ? out->count : 1) * sizeof *out->offsets);
    if (!out->offsets) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < out->count; i++)
        out->offsets[i] = tracker->frozen.offsets[i];
    return 0;
}

/* Freezes: waits for writes in flight, then no write begins any more. */
static int freeze(struct tracker *tracker)
{
    pthread_rwlock_wrlock(&tracker->write_gate);
    int state = atomic_load(&tracker->state);
    if (state == TRACKER_TRACKING)
        atomic_store(&tracker->state, TRACKER_FROZEN);
    pthread_rwlock_unlock(&tracker->write_gate);
    return state;
}

int tracker_finalize(struct tracker *tracker, uint64_t ack_generation, struct dirty_list *out)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    int before = freeze(tracker);
    if (before == TRACKER_SERVING) {
        errno = EBUSY;
        return -1;
    }
    if (!tracker->frozen_ready) {
        /* pending keeps everything until the list exists, so a retry after
         * a failure here still reports every chunk. */
        if (ack_generation != 0 && ack_generation == tracker->generation)
            dirty_set_clear(tracker->pending);
        dirty_set_take(tracker->dirty, tracker->pending);
        if (list_offsets(tracker, tracker->pending, &tracker->frozen) < 0)
            return -1;
        tracker->frozen_ready = true;
    }
    if (copy_frozen(tracker, out) < 0)
        return -1;
    out->already_finalized = before != TRACKER_TRACKING;
    return 0;
}

int tracker_complete(struct tracker *tracker)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    if (atomic_load(&tracker->state) < TRACKER_FROZEN) {
        errno = EBUSY;
        return -1;
    }
    atomic_store(&tracker->state, TRACKER_COMPLETE);
    return 0;
}

static double seconds_since(const struct timespec *then, struct timespec *now)
{
    clock_gettime(CLOCK_MONOTONIC, now);
    return (double)(now->tv_sec - then->tv_sec) + (double)(now->tv_nsec - then->tv_nsec) / 1e9;
}

void tracker_stats(struct tracker *tracker, struct tracker_stats *stats)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    stats->state = atomic_load(&tracker->state);
    stats->dirty_chunks = stats->state >= TRACKER_FROZEN
                              ? tracker->frozen.count
                              : dirty_set_count_union(tracker->dirty, tracker->pending);
    struct timespec now;
    double elapsed = seconds_since(&tracker->rate_time, &now);
    if (elapsed >= 1.0) {
        uint64_t total = atomic_load(&tracker->dirtied_total);
        tracker->rate = (double)(total - tracker->rate_total) / elapsed;
        tracker->rate_total = total;
        tracker->rate_time = now;
    }
    stats->dirty_rate = tracker->rate;
}
