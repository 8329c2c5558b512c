/* SPDX-License-Identifier: MIT */
/* The bulk byte budget (bulk-budget.h): a counter under a lock, a
 * condition for the waiters, and the estimate of rate and round trip. */
#include "bulk-budget.h"

#include "cleanup.h"

#include <time.h>

enum { RATE_WINDOW_US = 100000 }; /* the delivered rate is measured per 100 ms */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bulk_budget_init(struct bulk_budget *b)
{
    *b = (struct bulk_budget){
        .limit = BULK_BUDGET_FLOOR, .min_rtt_us = UINT64_MAX, .window_start = now_us()};
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->freed, NULL);
}

void bulk_budget_destroy(struct bulk_budget *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->freed);
}

/* max(floor, 2 x rate x round trip), with lock held. */
static void update_limit(struct bulk_budget *b)
{
    double bdp = b->min_rtt_us == UINT64_MAX ? 0 : 2.0 * b->rate * (double)b->min_rtt_us / 1e6;
    b->limit = bdp > BULK_BUDGET_FLOOR ? (uint64_t)bdp : BULK_BUDGET_FLOOR;
}

void bulk_budget_acquire(struct bulk_budget *b, uint64_t bytes)
{
    LOCK_FOR_SCOPE(&b->lock);
    while (b->in_flight > 0 && b->in_flight + bytes > b->limit)
        pthread_cond_wait(&b->freed, &b->lock);
    b->in_flight += bytes;
}

/* A new round trip sample, with lock held. */
static void note_round_trip(struct bulk_budget *b, uint64_t took_us)
{
    if (took_us < b->min_rtt_us)
        b->min_rtt_us = took_us ? took_us : 1;
}

void bulk_budget_release(struct bulk_budget *b, uint64_t bytes, bool delivered, uint64_t took_us)
{
    LOCK_FOR_SCOPE(&b->lock);
    b->in_flight -= bytes < b->in_flight ? bytes : b->in_flight;
    pthread_cond_broadcast(&b->freed);
    if (!delivered)
        return;
    b->window_bytes += bytes;
    note_round_trip(b, took_us);
    uint64_t now = now_us(), span = now - b->window_start;
    if (span >= RATE_WINDOW_US) {
        double rate = (double)b->window_bytes * 1e6 / (double)span;
        b->rate = rate > b->rate * 0.95 ? rate : b->rate * 0.95; /* a decaying maximum */
        b->window_start = now, b->window_bytes = 0;
    }
    update_limit(b);
}

void bulk_budget_round_trip(struct bulk_budget *b, uint64_t took_us)
{
    LOCK_FOR_SCOPE(&b->lock);
    note_round_trip(b, took_us);
    update_limit(b);
}

uint64_t bulk_budget_limit(struct bulk_budget *b)
{
    LOCK_FOR_SCOPE(&b->lock);
    return b->limit;
}
