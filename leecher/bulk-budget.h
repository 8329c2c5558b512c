/* SPDX-License-Identifier: MIT */
/* The byte budget of background pulls in flight: enough to fill the link
 * and no more, so a control call or an on-demand read never waits behind
 * more than a few milliseconds of ReadAt replies at the link's bottleneck.
 * The budget is rate x 2 x round trip (the pipe) plus the queue it allows:
 * rate x BULK_BUDGET_QUEUE_US, at most BULK_BUDGET_QUEUE_MAX bytes (on a
 * fast link the time is short anyway, and the bytes are memory). The rate
 * is the bytes delivered per second (the most in any of the last
 * BULK_BUDGET_WINDOWS windows of BULK_BUDGET_WINDOW_US), the round trip
 * the fastest call seen. Until a rate is measured it is BULK_BUDGET_START. It grows with
 * the link: where the budget holds the pull back, pulls come back faster
 * than the time it allows them, so the next rate and budget are larger.
 *
 * A worker reserves the bytes of the chunks it may pull before it claims
 * them (bulk_budget_chunks says how many), gives back what it did not
 * claim, and the rest when its reply is in. A reservation larger than the
 * budget goes alone. The clock is injected, for the unit test. */
#ifndef GODWIT_LEECHER_BULK_BUDGET_H
#define GODWIT_LEECHER_BULK_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Microseconds on a monotonic clock. */
typedef uint64_t bulk_budget_clock(void *arg);

enum {
    BULK_BUDGET_START = 4 << 20,     /* before the first rate: a few batches */
    BULK_BUDGET_QUEUE_US = 10000,    /* the queue at the bottleneck the budget allows */
    BULK_BUDGET_QUEUE_MAX = 4 << 20, /* ... in bytes at most */
    BULK_BUDGET_WINDOW_US = 100000,  /* the delivered rate is measured per 100 ms */
    BULK_BUDGET_WINDOWS = 8,         /* ... and is the best of the last 8 (800 ms) */
};

/* clock, clock_arg: set by bulk_budget_init, read-only afterwards; the
 * rest is owned by lock (a leaf: no other lock is taken under it). */
struct bulk_budget {
    bulk_budget_clock *clock;
    void *clock_arg;
    pthread_mutex_t lock;
    pthread_cond_t freed;              /* signalled to one waiter when in_flight goes down */
    pthread_cond_t drained;            /* broadcast when in_flight reaches 0 */
    unsigned waiting;                  /* threads waiting on freed */
    uint64_t in_flight;                /* bytes reserved and not yet given back */
    uint64_t limit;                    /* the budget now */
    uint64_t min_rtt_us;               /* fastest call seen; UINT64_MAX before any */
    double rates[BULK_BUDGET_WINDOWS]; /* bytes/s delivered in the last windows (ring); 0: none */
    unsigned next_rate;                /* where the next window's rate goes in rates */
    uint64_t window_start;             /* microseconds: the rate's current window */
    uint64_t window_bytes;             /* bytes given back delivered in it */
};

/* CLOCK NULL: CLOCK_MONOTONIC. */
void bulk_budget_init(struct bulk_budget *b, bulk_budget_clock *clock, void *clock_arg);
void bulk_budget_destroy(struct bulk_budget *b);
/* How many chunks of CHUNK_SIZE bytes fit the budget now: 1 to MAX. */
unsigned bulk_budget_chunks(struct bulk_budget *b, uint32_t chunk_size, unsigned max);
/* Waits until BYTES fit (alone, if they are more than the budget), then
 * reserves them. */
void bulk_budget_acquire(struct bulk_budget *b, uint64_t bytes);
/* Gives BYTES back; DELIVERED: the pull that carried them succeeded, in
 * TOOK_US (then they count towards the rate and the round trip). */
void bulk_budget_release(struct bulk_budget *b, uint64_t bytes, bool delivered, uint64_t took_us);
/* A round trip measured by a small call (a control call). */
void bulk_budget_round_trip(struct bulk_budget *b, uint64_t took_us);
/* Waits until nothing is in flight, for at most TIMEOUT_US of real time;
 * false if bytes are still in flight then. */
bool bulk_budget_drain(struct bulk_budget *b, uint64_t timeout_us);
/* The budget now, in bytes. */
uint64_t bulk_budget_limit(struct bulk_budget *b);
/* The delivered rate it is from, bytes/s; 0 before one was measured. */
double bulk_budget_rate(struct bulk_budget *b);

#endif
