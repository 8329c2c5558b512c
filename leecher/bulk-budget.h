/* SPDX-License-Identifier: MIT */
/* The byte budget of background pulls in flight: enough to fill the link
 * and no more, so a control call or an on-demand read never waits behind
 * megabytes of queued ReadAt replies. The budget is max(4 MiB, 2 x rate x
 * round trip), from the fastest call seen (the round trip) and the bytes
 * delivered per second (a slowly decaying maximum). A ReadAt acquires its
 * bytes before it is sent and releases them when its reply is in. */
#ifndef GODWIT_LEECHER_BULK_BUDGET_H
#define GODWIT_LEECHER_BULK_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Everything is owned by lock (a leaf: no other lock is taken under it). */
struct bulk_budget {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    uint64_t in_flight;    /* bytes acquired and not yet released */
    uint64_t limit;        /* the budget now */
    uint64_t min_rtt_us;   /* fastest call seen; UINT64_MAX before any */
    double rate;           /* bytes/s delivered, decaying maximum */
    uint64_t window_start; /* microseconds: the rate's current window */
    uint64_t window_bytes; /* bytes released in it */
};

enum { BULK_BUDGET_FLOOR = 4 << 20 };

void bulk_budget_init(struct bulk_budget *b);
void bulk_budget_destroy(struct bulk_budget *b);
/* Waits until BYTES fit (a request larger than the budget goes alone). */
void bulk_budget_acquire(struct bulk_budget *b, uint64_t bytes);
/* Gives BYTES back; DELIVERED: the call that carried them succeeded, in
 * TOOK_US (then they count towards the rate and the round trip). */
void bulk_budget_release(struct bulk_budget *b, uint64_t bytes, bool delivered, uint64_t took_us);
/* A round trip measured by a small call (a control call). */
void bulk_budget_round_trip(struct bulk_budget *b, uint64_t took_us);
/* The budget now, in bytes. */
uint64_t bulk_budget_limit(struct bulk_budget *b);

#endif
