/* SPDX-License-Identifier: MIT */
/* Pulling chunks: background workers take what the pull order hands out
 * (pull-order.h; batched into one ReadAt up to batch_bytes), and the two
 * pulls a read of a missing chunk makes in its own thread, on the
 * on-demand lane (on-demand.c decides which): a chunk's stale pages, or
 * only the pages the read needs. */
#include "leecher.h"

#include "cleanup.h"
#include "log.h"
#include "pull-order.h"
#include "seeder-client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_BACKOFF_MS = 2000 };

enum { MAX_IOV = 256 }; /* slices one chunk may span in a reply */

#define ON_DEMAND_LANE UINT64_MAX /* pull's lane for a read someone waits for */

/* What one pull stores: a chunk's part of a ReadAt reply (the whole chunk,
 * or the span of its stale pages), in place, or zeroes. */
struct store_arg {
    struct leecher *l;
    const struct seeder_data *data;
    size_t at; /* where the chunk starts in the data */
    uint32_t len;
    uint64_t offset;
    bool zero; /* the chunk reads as zeroes: it is not in the data */
};

static int stop_at_data(void *arg, uint64_t offset, uint64_t length, bool hole)
{
    (void)arg, (void)offset, (void)length;
    return hole ? 0 : 1;
}

/* A zero chunk stays (or becomes) a hole: nothing to do where the local
 * image holds no data (it is created sparse), a punched hole where it does
 * (a pull before the source zeroed it, a previous run). */
static int store_zeroes(const struct store_arg *a)
{
    int r = image_describe(&a->l->image, a->offset, a->offset + a->len, stop_at_data, NULL);
    return r == 0 ? 0 : image_zero(&a->l->image, a->len, a->offset);
}

static int store_chunk(void *arg)
{
    struct store_arg *a = arg;
    if (a->zero)
        return store_zeroes(a);
    struct iovec iov[MAX_IOV];
    int n = seeder_data_iov(a->data, a->at, a->len, iov, MAX_IOV);
    if (n < 0) {
        errno = EIO;
        return -1;
    }
    /* Allocated first: cheaper writes (image-file.h). Under the stripe
     * lock, for a claim that still holds: a pull that lost its chunk
     * allocates nothing. */
    if (image_allocate(&a->l->image, a->len, a->offset) < 0)
        return -1;
    return image_pwritev(&a->l->image, iov, n, a->offset);
}

/* Whether the chunk at OFFSET (LEN bytes) is in the zero ranges of DATA,
 * from *NEXT on (ranges ascending, chunks asked in order). A chunk only
 * partly in a range is neither: -1. */
static int chunk_is_zero(const struct seeder_data *data, size_t *next, uint64_t offset,
                         uint32_t len)
{
    while (*next < data->n_zeros && data->zeros[*next].offset + data->zeros[*next].length <= offset)
        ++*next;
    if (*next == data->n_zeros || data->zeros[*next].offset >= offset + len)
        return 0;
    const struct wire_zero_range *z = &data->zeros[*next];
    return z->offset <= offset && z->offset + z->length >= offset + len ? 1 : -1;
}

/* Folds one ReadAt of COUNT chunks that took US into the per-chunk EWMA
 * (weight 1/8): one compare-and-swap, any thread. */
static void note_pull_time(struct leecher *l, uint64_t us, unsigned count)
{
    uint64_t sample = us * 1000 / count, old = atomic_load(&l->chunk_pull_ns), next;
    do
        next = old ? old - old / 8 + sample / 8 : sample;
    while (!atomic_compare_exchange_weak(&l->chunk_pull_ns, &old, next));
}

/* A reply to READ failed its checksum (attempt ATTEMPT, from 0): counted
 * and reported; false once that was the last attempt --checksum-retries
 * allows, after failing the migration. */
static bool note_mismatch(struct leecher *l, const struct seeder_read *read, unsigned attempt)
{
    metric_counter_add(&l->checksum_mismatches, 1);
    log_event(l->log, "checksum_mismatch",
              json_pack("{s:I,s:I,s:i,s:b}", "offset", (json_int_t)read->offset, "length",
                        (json_int_t)read->length, "attempt", (int)attempt + 1, "on_demand",
                        read->on_demand));
    if (attempt < l->checksum_retries)
        return true;
    leecher_fail(l,
                 "%u ReadAt replies in a row for %llu+%u did not match their checksum "
                 "(--checksum-retries %u): the link or the seeder corrupts data; nothing "
                 "corrupt was written",
                 attempt + 1, (unsigned long long)read->offset, read->length, l->checksum_retries);
    return false;
}

/* ReadAt of READ into *DATA; a reply that fails its checksum is never
 * used: the same range is pulled again, up to --checksum-retries times. */
static grpc_status_code read_verified(struct leecher *l, const struct seeder_read *read,
                                      struct seeder_data *data, struct rpc_result *result)
{
    struct seeder_read again = *read;
    for (unsigned attempt = 0;; attempt++) {
        grpc_status_code status = seeder_client_read_at(l->seeder, &again, data, result);
        if (status != GRPC_STATUS_DATA_LOSS || !note_mismatch(l, read, attempt))
            return status;
        again.paid = false; /* a second pull of the range pays for itself */
    }
}

/* Where the stale pages of claimed chunks FIRST..LAST start and end: from
 * the first stale page of FIRST to the end of the last one of LAST (whole
 * chunks unless the source rewrote only some pages of a local chunk). */
static void stale_span(struct leecher *l, uint64_t first, uint64_t last, uint64_t *start,
                       uint64_t *end)
{
    uint64_t page = chunk_page_size(&l->geo);
    uint64_t head = chunk_map_stale_pages(l->map, first);
    uint64_t tail = chunk_map_stale_pages(l->map, last);
    head = head ? head : UINT64_MAX, tail = tail ? tail : UINT64_MAX;
    uint64_t tail_end = (uint64_t)(64 - __builtin_clzll(tail)) * page;
    *start = chunk_offset(&l->geo, first) + (uint64_t)__builtin_ctzll(head) * page;
    *end = chunk_offset(&l->geo, last) +
           (tail_end < chunk_length(&l->geo, last) ? tail_end : chunk_length(&l->geo, last));
    if (*start >= *end) /* nothing stale within the chunk (a bad mask): all of it */
        *start = chunk_offset(&l->geo, first);
}

/* The part of chunk CHUNK inside [start, end). */
static void chunk_part(struct leecher *l, uint64_t chunk, uint64_t start, uint64_t end,
                       uint64_t *offset, uint32_t *len)
{
    uint64_t from = chunk_offset(&l->geo, chunk), to = from + chunk_length(&l->geo, chunk);
    from = from > start ? from : start;
    to = to < end ? to : end;
    *offset = from, *len = (uint32_t)(to - from);
}

/* Pulls COUNT claimed chunks from FIRST with one ReadAt on LANE
 * (ON_DEMAND_LANE: a read someone waits for, ahead of the background ones);
 * commits each whose claim still holds. Returns 0; -1 with the gRPC status
 * in *STATUS; -2 if a chunk could not be stored for lack of space. */
static int pull(struct leecher *l, uint64_t first, unsigned count, const uint32_t *tickets,
                uint64_t lane, grpc_status_code *status, char *why, size_t whylen)
{
    uint64_t offset, end;
    stale_span(l, first, first + count - 1, &offset, &end);
    uint64_t whole = chunk_offset(&l->geo, first + count - 1) +
                     chunk_length(&l->geo, first + count - 1) - chunk_offset(&l->geo, first);
    /* A background pull took its bandwidth for whole chunks in claim_work:
     * what it does not read goes back. */
    if (lane != ON_DEMAND_LANE && whole > end - offset)
        seeder_client_refund_bandwidth(l->seeder, whole - (end - offset));
    struct seeder_read read = {l->image_id,
                               offset,
                               (uint32_t)(end - offset),
                               lane,
                               lane == ON_DEMAND_LANE,
                               l->checksums,
                               lane != ON_DEMAND_LANE};
    struct seeder_data data;
    struct rpc_result result;
    uint64_t start = leecher_now_us();
    *status = read_verified(l, &read, &data, &result);
    if (*status != GRPC_STATUS_OK) {
        snprintf(why, whylen, "%s", result.message);
        return -1;
    }
    note_pull_time(l, leecher_now_us() - start, count);
    if (lane == ON_DEMAND_LANE)
        atomic_fetch_add(&l->on_demand_bytes, read.length);
    int r = 0;
    size_t at = 0, next_zero = 0;
    for (unsigned i = 0; i < count; i++) {
        uint64_t chunk = first + i;
        struct store_arg arg = {l, &data, at, 0, 0, false};
        chunk_part(l, chunk, offset, end, &arg.offset, &arg.len);
        int zero = chunk_is_zero(&data, &next_zero, arg.offset, arg.len);
        if (zero < 0) {
            snprintf(why, whylen, "a ReadAt reply cut chunk %llu", (unsigned long long)chunk);
            *status = GRPC_STATUS_INTERNAL;
            r = -1;
            break;
        }
        arg.zero = zero;
        at += zero ? 0 : arg.len;
        int stored = chunk_map_commit(l->map, chunk, tickets[i], store_chunk, &arg);
        if (stored < 0 && r == 0) {
            r = storage_error(errno) ? -2 : -1;
            *status = GRPC_STATUS_INTERNAL;
            snprintf(why, whylen, "cannot store chunk %llu: %s", (unsigned long long)chunk,
                     strerror(errno));
        }
    }
    atomic_fetch_add(&l->bytes_pulled, data.reply.length);
    atomic_fetch_add(&l->bytes_decoded, data.length);
    metric_counter_add(&l->pulled_chunks, count);
    metric_histogram_observe(&l->pull_us, leecher_now_us() - start);
    seeder_data_free(&data);
    return r;
}

/* One worker's own state, allocated before its thread starts. */
struct worker_arg {
    struct leecher *l;
    unsigned index;
    unsigned max;       /* chunks one ReadAt may carry: batch_bytes / chunk_size */
    uint32_t tickets[]; /* max of them */
};

/* A chunk whose source rewrote only some pages is pulled alone (only those
 * pages); whole chunks in a row go together. Keeps the batch's first chunk
 * and the whole chunks after it, releases the rest; the count kept. */
static unsigned trim_batch(struct leecher *l, uint64_t first, unsigned count,
                           const uint32_t *tickets)
{
    unsigned keep = 1;
    if (chunk_map_stale_pages(l->map, first) == UINT64_MAX)
        while (keep < count && chunk_map_stale_pages(l->map, first + keep) == UINT64_MAX)
            keep++;
    for (unsigned i = keep; i < count; i++)
        chunk_map_release(l->map, first + i, tickets[i]);
    return keep;
}

/* Takes the bandwidth (--max-bandwidth) and then the budget's share, and
 * claims that many chunks at most, with nothing held; the count claimed
 * (the surplus given back), 0 after waiting for work, a resume or the
 * budget to change. *STOP: the worker is done. */
static unsigned claim_work(struct leecher *l, struct worker_arg *w, uint64_t *first, bool *stop)
{
    uint32_t chunk_size = l->geo.chunk_size;
    unsigned want = bulk_budget_chunks(&l->budget, chunk_size, w->max), count = 0;
    seeder_client_take_bandwidth(l->seeder, (uint64_t)want * chunk_size);
    bulk_budget_acquire(&l->budget, (uint64_t)want * chunk_size);
    LOCK_FOR_SCOPE(&l->lock);
    *stop = l->stopping || l->state == FAILED;
    if (!*stop && !l->storage_full && !l->bulk_paused)
        count = pull_order_claim(l->order, want, first, w->tickets);
    if (count > 1)
        count = trim_batch(l, *first, count, w->tickets);
    /* The budget's and the bucket's locks are leaves: given back under
     * l->lock. */
    bulk_budget_release(&l->budget, (uint64_t)(want - count) * chunk_size, false, 0);
    if (want > count)
        seeder_client_refund_bandwidth(l->seeder, (uint64_t)(want - count) * chunk_size);
    if (!count && !*stop)
        leecher_wait(l, 200000); /* checked under the lock: no wake-up is missed */
    return count;
}

/* After a background pull committed: wakes the threads on changed if a
 * read waits for a chunk or every chunk is local now (the monitor then
 * completes the migration). Nothing else waits for a commit; waking the
 * syncer, the monitor and idle workers at every reply cost about 3 k of
 * the leecher's 18 k context switches per GiB on loopback. */
static void wake_after_pull(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->lock);
    if (l->chunk_waiters || chunk_map_local(l->map) == l->geo.chunks)
        pthread_cond_broadcast(&l->changed);
}

static void *worker(void *arg)
{
    struct worker_arg *w = arg;
    struct leecher *l = w->l;
    uint32_t *tickets = w->tickets;
    int backoff = 0;
    for (;;) {
        uint64_t first = 0;
        bool stop;
        unsigned count = claim_work(l, w, &first, &stop);
        if (stop)
            break;
        if (!count)
            continue;
        grpc_status_code status;
        char why[256];
        uint64_t start = leecher_now_us();
        int pulled = pull(l, first, count, tickets, w->index, &status, why, sizeof why);
        bulk_budget_release(&l->budget, (uint64_t)count * l->geo.chunk_size, pulled == 0,
                            leecher_now_us() - start);
        if (pulled == 0) {
            backoff = 0;
            wake_after_pull(l);
            continue;
        }
        for (unsigned i = 0; i < count; i++)
            chunk_map_release(l->map, first + i, tickets[i]);
        if (status == GRPC_STATUS_FAILED_PRECONDITION) {
            leecher_fail(l, "the seeder refused to serve image %s: %s", l->image_id, why);
            break;
        }
        if (status == GRPC_STATUS_INVALID_ARGUMENT || status == GRPC_STATUS_OUT_OF_RANGE) {
            /* The same read would be refused forever: fail loudly instead. */
            leecher_fail(l, "the seeder refused a read of chunk %llu: %s",
                         (unsigned long long)first, why);
            break;
        }
        if (pulled == -2) {
            storage_full(l); /* every worker waits until there is room */
            continue;
        }
        backoff = backoff ? (backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2) : 50;
        if (backoff == 50)
            log_warn(l->log, "pulling chunk %llu failed (%s); retrying with backoff",
                     (unsigned long long)first, why);
        metric_counter_add(&l->pull_retries, 1);
        leecher_sleep_ms(backoff);
    }
    free(w);
    return NULL;
}

int pullers_start(struct leecher *l, pthread_t **threads, unsigned *started)
{
    unsigned max = l->batch_bytes / l->geo.chunk_size;
    max = max ? max : 1;
    *started = 0;
    if (!(*threads = calloc(l->n_workers, sizeof **threads)))
        return errno = ENOMEM, -1;
    for (unsigned i = 0; i < l->n_workers; i++) {
        struct worker_arg *w = malloc(sizeof *w + max * sizeof w->tickets[0]);
        if (!w)
            return errno = ENOMEM, -1;
        w->l = l, w->index = i, w->max = max;
        int err = pthread_create(&(*threads)[i], NULL, worker, w);
        if (err) {
            free(w);
            return errno = err, -1;
        }
        ++*started;
    }
    return 0;
}

void pullers_join(pthread_t *threads, unsigned started)
{
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}

int leecher_pull_chunk(struct leecher *l, uint64_t chunk, uint32_t ticket, char *why, size_t whylen)
{
    grpc_status_code status;
    return pull(l, chunk, 1, &ticket, ON_DEMAND_LANE, &status, why, whylen);
}

/* One chunk's part of a read's pull: stores it as its pages
 * (chunk_map_commit_pages); 0 stored, 1 dropped, -1 with WHY. */
static int commit_part(struct leecher *l, uint64_t chunk, uint32_t seen, struct store_arg *arg,
                       char *why, size_t whylen)
{
    uint64_t start = chunk_offset(&l->geo, chunk);
    uint64_t every = chunk_page_mask(&l->geo, chunk, start, chunk_length(&l->geo, chunk));
    uint64_t pages = chunk_page_mask(&l->geo, chunk, arg->offset, arg->len);
    int r = chunk_map_commit_pages(l->map, chunk, seen, pages, every, store_chunk, arg);
    if (r < 0)
        snprintf(why, whylen, "cannot store %llu+%u: %s", (unsigned long long)arg->offset, arg->len,
                 strerror(errno));
    return r;
}

int leecher_pull_pages(struct leecher *l, uint64_t first, unsigned count, const uint32_t *seen,
                       uint64_t from, uint64_t to, char *why, size_t whylen)
{
    struct seeder_read read = {l->image_id,  from, (uint32_t)(to - from), ON_DEMAND_LANE, true,
                               l->checksums, false};
    struct seeder_data data;
    struct rpc_result result;
    uint64_t began = leecher_now_us();
    if (read_verified(l, &read, &data, &result) != GRPC_STATUS_OK) {
        snprintf(why, whylen, "%s", result.message);
        return -1;
    }
    atomic_fetch_add(&l->on_demand_bytes, read.length);
    atomic_fetch_add(&l->bytes_pulled, data.reply.length);
    atomic_fetch_add(&l->bytes_decoded, data.length);
    int r = 0;
    size_t at = 0, next_zero = 0;
    for (unsigned i = 0; i < count && r >= 0; i++) {
        struct store_arg arg = {l, &data, at, 0, 0, false};
        chunk_part(l, first + i, from, to, &arg.offset, &arg.len);
        int zero = chunk_is_zero(&data, &next_zero, arg.offset, arg.len);
        if (zero < 0) {
            snprintf(why, whylen, "a ReadAt reply cut the pages %llu+%u",
                     (unsigned long long)arg.offset, arg.len);
            r = -1;
            break;
        }
        arg.zero = zero;
        at += zero ? 0 : arg.len;
        int stored = commit_part(l, first + i, seen[i], &arg, why, whylen);
        r = stored < 0 ? -1 : (r | stored);
    }
    metric_histogram_observe(&l->pull_us, leecher_now_us() - began);
    seeder_data_free(&data);
    return r;
}
