/* SPDX-License-Identifier: MIT */
/* What a read or write of the destination export waits for after
 * Finalize. A chunk that is not local is pulled at once in the caller's
 * own thread, on the on-demand lane (ahead of background pulls on the wire
 * and in the bandwidth bucket). A read fetches first only the pages it
 * needs (chunk_size / 64 bytes each: 4 KiB at 256 KiB chunks), so the
 * reply it waits for carries a few KiB instead of a whole chunk; the rest
 * of the chunk goes to the front of the workers' queue, and the chunk
 * turns LOCAL (in the map, then in the state file) only once that rest is
 * stored too. A write that covers part of a chunk waits for all of it, so
 * the rest arriving later can never overwrite what the destination app
 * wrote; one that covers the whole chunk cancels every pull of it
 * (chunk_map_overwrite). A chunk that another thread is pulling already is
 * waited for, not fetched twice. */
#include "leecher.h"

#include "cleanup.h"
#include "log.h"
#include "pull-order.h"

#include <errno.h>

enum { RETRY_MS = 50, WAIT_SLICE_US = 100000 };

/* Every page of CHUNK (the last chunk may have fewer than 64). */
static uint64_t every_page(const struct leecher *l, uint64_t chunk)
{
    return chunk_page_mask(&l->geo, chunk, chunk_offset(&l->geo, chunk),
                           chunk_length(&l->geo, chunk));
}

/* Which of PAGES of CHUNK are not current on disk, given its WORD (0 if
 * none: it is local, or they were pulled already). Read the word first:
 * pages join the current ones only once stored. */
static uint64_t missing_pages(const struct leecher *l, uint64_t chunk, uint32_t word,
                              uint64_t pages)
{
    if (chunk_word_is_local(word))
        return 0;
    return chunk_map_stale_pages(l->map, chunk) & every_page(l, chunk) & pages;
}

/* Waits on the condition until DEADLINE_US; false once it has passed. */
static bool wait_until(struct leecher *l, uint64_t deadline_us)
{
    uint64_t now = leecher_now_us();
    if (now >= deadline_us)
        return false;
    leecher_wait(l, deadline_us - now < WAIT_SLICE_US ? deadline_us - now : WAIT_SLICE_US);
    return true;
}

/* CHUNK, whose word was WORD, is being pulled by another thread: waits for
 * a change. False with errno ESHUTDOWN (stopping) or EIO (past DEADLINE). */
static bool wait_for_pull(struct leecher *l, uint64_t chunk, uint32_t word, uint64_t deadline)
{
    LOCK_FOR_SCOPE(&l->lock);
    l->chunk_waiters++;
    /* Looked at again once counted: a commit from now on wakes us. */
    bool moved = chunk_map_word(l->map, chunk) != word;
    bool stopping = l->stopping, waited = !stopping && (moved || wait_until(l, deadline));
    l->chunk_waiters--;
    if (stopping || !waited)
        errno = stopping ? ESHUTDOWN : EIO;
    return !stopping && waited;
}

/* A pull of CHUNK failed (WHY): true after a pause if it may be tried
 * again; false with errno once the migration failed, is stopping or
 * DEADLINE passed (never zeros: the caller's request fails). */
static bool may_retry(struct leecher *l, uint64_t chunk, uint64_t deadline, const char *why)
{
    pthread_mutex_lock(&l->lock); /* a failed migration pulls nothing more */
    bool failed = l->state == FAILED, stopping = l->stopping;
    pthread_mutex_unlock(&l->lock);
    if (failed || stopping || leecher_now_us() >= deadline) {
        log_error(l->log, "chunk %llu is not local and cannot be pulled: %s",
                  (unsigned long long)chunk, why);
        errno = stopping ? ESHUTDOWN : EIO;
        return false;
    }
    metric_counter_add(&l->pull_retries, 1);
    leecher_sleep_ms(RETRY_MS);
    return true;
}

/* Claims CHUNK and pulls all it lacks: 0 pulled, 1 someone else claimed it
 * first (look again), -1 failed with a sentence in WHY. */
static int pull_whole(struct leecher *l, uint64_t chunk, char *why, size_t whylen)
{
    uint32_t ticket;
    if (!chunk_map_claim(l->map, chunk, &ticket))
        return 1;
    if (leecher_pull_chunk(l, chunk, ticket, why, whylen) == 0)
        return 0;
    chunk_map_release(l->map, chunk, ticket);
    return -1;
}

/* After an on-demand pull of CHUNK: with REST, the rest of the chunk goes
 * first in the workers' queue; the next chunks jump it too (reads tend to
 * go on where they stopped). */
static void queue_after_read(struct leecher *l, uint64_t chunk, bool rest)
{
    LOCK_FOR_SCOPE(&l->lock);
    if (rest)
        pull_order_put_rest(l->order, chunk);
    pull_order_on_demand(l->order, chunk);
    pthread_cond_broadcast(&l->changed);
}

/* What of PAGES of CHUNK (word WORD) must still be pulled; WHOLE: the
 * chunk must be LOCAL, so every page while it is not (a write's rule). */
static uint64_t needed(const struct leecher *l, uint64_t chunk, uint32_t word, uint64_t pages,
                       bool whole)
{
    if (whole)
        return chunk_word_is_local(word) ? 0 : UINT64_MAX;
    return missing_pages(l, chunk, word, pages);
}

/* Pulls until PAGES of CHUNK are current on disk, or with WHOLE until the
 * chunk is LOCAL (see the top). */
static int ensure(struct leecher *l, uint64_t chunk, uint64_t pages, bool whole)
{
    uint64_t deadline = leecher_now_us() + (uint64_t)l->pull_timeout_ms * 1000;
    for (;;) {
        uint32_t word = chunk_map_word(l->map, chunk);
        uint64_t need = needed(l, chunk, word, pages, whole);
        if (!need)
            return 0;
        if ((enum chunk_state)(word & 3) == CHUNK_PULLING) {
            if (!wait_for_pull(l, chunk, word, deadline))
                return -1;
            continue;
        }
        char why[256];
        bool part = !whole && need != missing_pages(l, chunk, word, UINT64_MAX);
        int r = part ? leecher_pull_pages(l, chunk, word, need, why, sizeof why)
                     : pull_whole(l, chunk, why, sizeof why);
        if (r == 0)
            queue_after_read(l, chunk, part);
        else if (r < 0 && !may_retry(l, chunk, deadline, why))
            return -1;
    }
}

/* ensure, timed in the on-demand histogram when it has to wait. */
static int ensure_counted(struct leecher *l, uint64_t chunk, uint64_t pages, bool whole)
{
    if (!needed(l, chunk, chunk_map_word(l->map, chunk), pages, whole))
        return 0; /* the common case: nothing to wait for, nothing to count */
    uint64_t start = leecher_now_us();
    int r = ensure(l, chunk, pages, whole);
    metric_histogram_observe(&l->on_demand_us, leecher_now_us() - start);
    return r;
}

int leecher_ensure_pages(struct leecher *l, uint64_t chunk, uint64_t pages)
{
    return ensure_counted(l, chunk, pages, false);
}

int leecher_ensure_local(struct leecher *l, uint64_t chunk)
{
    return ensure_counted(l, chunk, UINT64_MAX, true);
}
