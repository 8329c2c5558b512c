/* SPDX-License-Identifier: MIT */
/* The bulk byte budget (bulk-budget.h): a counter under a lock, a
 * condition for the waiters, and the estimate of rate and round trip.
 * A release wakes one waiter, which passes the wake on while the budget
 * has room: a broadcast woke every worker of a pull held by the budget at
 * every reply, most of them only to wait again (on loopback, 14 k of the
 * leecher's 25 k context switches per GiB were that). */
#include "bulk-budget.h"

#include "cleanup.h"

#include <errno.h>
#include <time.h>

static uint64_t monotonic_us(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bulk_budget_init(struct bulk_budget *b, bulk_budget_clock *clock, void *clock_arg)
{
    *b = (struct bulk_budget){.clock = clock ? clock : monotonic_us,
                              .clock_arg = clock_arg,
                              .limit = BULK_BUDGET_START,
                              .min_rtt_us = UINT64_MAX};
    b->window_start = b->clock(b->clock_arg);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->freed, &attr);
    pthread_cond_init(&b->drained, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&b->lock, NULL);
}

void bulk_budget_destroy(struct bulk_budget *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->freed);
    pthread_cond_destroy(&b->drained);
}

/* The best rate of the last windows, with lock held. */
static double best_rate(const struct bulk_budget *b)
{
    double best = 0;
    for (unsigned i = 0; i < BULK_BUDGET_WINDOWS; i++)
        best = b->rates[i] > best ? b->rates[i] : best;
    return best;
}

/* rate x 2 x round trip + the queue allowed, with lock held; at least 1
 * (a reservation then goes alone). */
static void update_limit(struct bulk_budget *b)
{
    double rate = best_rate(b);
    if (rate <= 0 || b->min_rtt_us == UINT64_MAX)
        return;
    double queue = rate * BULK_BUDGET_QUEUE_US / 1e6;
    if (queue > BULK_BUDGET_QUEUE_MAX)
        queue = BULK_BUDGET_QUEUE_MAX;
    double bytes = rate * 2.0 * (double)b->min_rtt_us / 1e6 + queue;
    b->limit = bytes >= 1 ? (uint64_t)bytes : 1;
}

unsigned bulk_budget_chunks(struct bulk_budget *b, uint32_t chunk_size, unsigned max)
{
    LOCK_FOR_SCOPE(&b->lock);
    uint64_t n = b->limit / chunk_size;
    return n < 1 ? 1 : n > max ? max : (unsigned)n;
}

void bulk_budget_acquire(struct bulk_budget *b, uint64_t bytes)
{
    LOCK_FOR_SCOPE(&b->lock);
    while (b->in_flight > 0 && b->in_flight + bytes > b->limit) {
        b->waiting++;
        pthread_cond_wait(&b->freed, &b->lock);
        b->waiting--;
    }
    b->in_flight += bytes;
    if (b->waiting && b->in_flight < b->limit)
        pthread_cond_signal(&b->freed); /* room for the next one, perhaps */
}

/* A new round trip sample, with lock held. */
static void note_round_trip(struct bulk_budget *b, uint64_t took_us)
{
    if (took_us < b->min_rtt_us)
        b->min_rtt_us = took_us ? took_us : 1;
}

/* BYTES delivered: the rate's window, with lock held. */
static void note_delivered(struct bulk_budget *b, uint64_t bytes)
{
    b->window_bytes += bytes;
    uint64_t now = b->clock(b->clock_arg), span = now - b->window_start;
    if (span < BULK_BUDGET_WINDOW_US)
        return;
    b->rates[b->next_rate] = (double)b->window_bytes * 1e6 / (double)span;
    b->next_rate = (b->next_rate + 1) % BULK_BUDGET_WINDOWS;
    b->window_start = now, b->window_bytes = 0;
}

void bulk_budget_release(struct bulk_budget *b, uint64_t bytes, bool delivered, uint64_t took_us)
{
    if (!bytes && !delivered)
        return; /* nothing changes */
    LOCK_FOR_SCOPE(&b->lock);
    b->in_flight -= bytes < b->in_flight ? bytes : b->in_flight;
    if (b->waiting)
        pthread_cond_signal(&b->freed);
    if (b->in_flight == 0)
        pthread_cond_broadcast(&b->drained);
    if (!delivered)
        return;
    note_round_trip(b, took_us);
    note_delivered(b, bytes);
    update_limit(b);
}

void bulk_budget_round_trip(struct bulk_budget *b, uint64_t took_us)
{
    LOCK_FOR_SCOPE(&b->lock);
    note_round_trip(b, took_us);
    update_limit(b);
}

bool bulk_budget_drain(struct bulk_budget *b, uint64_t timeout_us)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_us / 1000000);
    until.tv_nsec += (long)(timeout_us % 1000000) * 1000;
    if (until.tv_nsec >= 1000000000)
        until.tv_sec++, until.tv_nsec -= 1000000000;
    LOCK_FOR_SCOPE(&b->lock);
    while (b->in_flight > 0)
        if (pthread_cond_timedwait(&b->drained, &b->lock, &until) == ETIMEDOUT)
            break;
    return b->in_flight == 0;
}

uint64_t bulk_budget_limit(struct bulk_budget *b)
{
    LOCK_FOR_SCOPE(&b->lock);
    return b->limit;
}

double bulk_budget_rate(struct bulk_budget *b)
{
    LOCK_FOR_SCOPE(&b->lock);
    return best_rate(b);
}
