/* SPDX-License-Identifier: MIT */
/* What a read or write of the destination export waits for after
 * Finalize. A chunk that is not local is pulled at once in the caller's
 * own thread, on the on-demand lane (ahead of background pulls on the wire
 * and in the bandwidth bucket). A read fetches first only the pages it
 * needs (chunk_size / 64 bytes each: 4 KiB at 256 KiB chunks), so the
 * reply it waits for carries a few KiB instead of a whole chunk; the rest
 * of the chunk goes to the front of the workers' queue, and the chunk
 * turns LOCAL (in the map, then in the state file) only once that rest is
 * stored too. A read over several chunks that all lack pages of it pulls
 * them with one ReadAt (one round trip, not one per chunk). A write that
 * covers part of a chunk waits for all of it, so
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

/* After an on-demand pull of the COUNT chunks from FIRST: the rest of each
 * that is not local yet goes first in the workers' queue; the next chunks
 * jump it too (reads tend to go on where they stopped). */
static void queue_after_read(struct leecher *l, uint64_t first, uint64_t count)
{
    LOCK_FOR_SCOPE(&l->lock);
    for (uint64_t c = first; c < first + count; c++)
        if (!chunk_word_is_local(chunk_map_word(l->map, c)))
            pull_order_put_rest(l->order, c);
    pull_order_on_demand(l->order, first + count - 1);
    pthread_cond_broadcast(&l->changed);
}

/* [*FROM, *TO): from the first of HEAD, pages of chunk FIRST, to the end of
 * the last of TAIL, pages of chunk LAST (not 0 either). */
static void page_span(const struct leecher *l, uint64_t first, uint64_t head, uint64_t last,
                      uint64_t tail, uint64_t *from, uint64_t *to)
{
    uint64_t page = chunk_page_size(&l->geo);
    uint64_t end = chunk_offset(&l->geo, last) + chunk_length(&l->geo, last);
    *from = chunk_offset(&l->geo, first) + (uint64_t)__builtin_ctzll(head) * page;
    *to = chunk_offset(&l->geo, last) + (uint64_t)(64 - __builtin_clzll(tail)) * page;
    *to = *to < end ? *to : end;
}

/* Pulls only NEED, pages of REMOTE chunk CHUNK (word WORD): 0, 1, -1 as
 * leecher_pull_pages. */
static int pull_part(struct leecher *l, uint64_t chunk, uint32_t word, uint64_t need, char *why,
                     size_t whylen)
{
    uint64_t from, to;
    page_span(l, chunk, need, chunk, need, &from, &to);
    return leecher_pull_pages(l, chunk, 1, &word, from, to, why, whylen);
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
        int r = part ? pull_part(l, chunk, word, need, why, sizeof why)
                     : pull_whole(l, chunk, why, sizeof why);
        if (r == 0)
            queue_after_read(l, chunk, 1);
        else if (r < 0 && !may_retry(l, chunk, deadline, why))
            return -1;
    }
}

enum { SPAN_CHUNKS = 64 }; /* the most chunks one read's pull covers */

/* The pages of chunk C that [OFFSET, OFFSET+COUNT) touches. */
static uint64_t read_pages(const struct leecher *l, uint64_t c, uint64_t offset, uint32_t count)
{
    return chunk_page_mask(&l->geo, c, offset, count);
}

/* A read over chunks FIRST..LAST, each REMOTE and lacking some of the
 * pages it touches: one ReadAt for all of them, one round trip instead of
 * one per chunk (a chunk it covers whole turns LOCAL). Best effort: what
 * it leaves (a chunk being pulled, a failure) is pulled chunk by chunk. */
static void pull_read_span(struct leecher *l, uint64_t offset, uint32_t count, uint64_t first,
                           uint64_t last)
{
    uint64_t n = last - first + 1, head = 0, tail = 0, from, to;
    uint32_t seen[SPAN_CHUNKS];
    if (n < 2 || n > SPAN_CHUNKS)
        return;
    for (uint64_t i = 0; i < n; i++) {
        seen[i] = chunk_map_word(l->map, first + i);
        uint64_t need =
            missing_pages(l, first + i, seen[i], read_pages(l, first + i, offset, count));
        if (!need || (enum chunk_state)(seen[i] & 3) != CHUNK_REMOTE)
            return;
        head = i == 0 ? need : head;
        tail = need;
    }
    page_span(l, first, head, last, tail, &from, &to);
    char why[256];
    if (to - from <= l->max_read &&
        leecher_pull_pages(l, first, (unsigned)n, seen, from, to, why, sizeof why) >= 0)
        queue_after_read(l, first, n);
}

/* Whether every page [OFFSET, OFFSET+COUNT) touches is current. */
static bool range_ready(const struct leecher *l, uint64_t offset, uint32_t count, uint64_t first,
                        uint64_t last)
{
    for (uint64_t c = first; c <= last; c++)
        if (missing_pages(l, c, chunk_map_word(l->map, c), read_pages(l, c, offset, count)))
            return false;
    return true;
}

int leecher_ensure_range(struct leecher *l, uint64_t offset, uint32_t count)
{
    uint64_t first, last;
    chunk_span(&l->geo, offset, count, &first, &last);
    if (range_ready(l, offset, count, first, last))
        return 0; /* the common case: nothing to wait for, nothing to count */
    uint64_t start = leecher_now_us();
    pull_read_span(l, offset, count, first, last);
    int r = 0;
    for (uint64_t c = first; c <= last && r == 0; c++)
        r = ensure(l, c, read_pages(l, c, offset, count), false);
    metric_histogram_observe(&l->on_demand_us, leecher_now_us() - start);
    return r;
}

int leecher_ensure_local(struct leecher *l, uint64_t chunk)
{
    if (chunk_word_is_local(chunk_map_word(l->map, chunk)))
        return 0;
    uint64_t start = leecher_now_us();
    int r = ensure(l, chunk, UINT64_MAX, true);
    metric_histogram_observe(&l->on_demand_us, leecher_now_us() - start);
    return r;
}
