/* SPDX-License-Identifier: MIT */
/* --max-bandwidth: one token bucket for every byte the leecher pulls, on
 * all channels and from all workers. A pull takes its bytes before the
 * ReadAt is sent and settles to what the reply carried on the wire (zero
 * ranges cost nothing). The bucket holds at most BURST_MS of the rate and
 * may go into debt: a pull larger than the tokens goes, and the next one
 * waits until the debt is paid. While a background pull waits it holds up
 * to CATCH_UP_MS more: a pull that wakes late (a loaded machine) keeps the
 * tokens that came in while it overslept instead of losing all but the
 * burst, so a pull bound by the cap gets the rate. Over any few seconds
 * the bytes pulled are the rate times the time plus one burst, one
 * catch-up and one pull.
 *
 * Urgent pulls (a read the destination app waits for) go first: they never
 * wait for a background pull. They may overdraw the bucket by one second
 * of the rate plus the largest background pull, which the background pulls
 * then pay back by waiting; only an app reading faster than the cap waits
 * for tokens itself. The clock is injected, for the unit test. */
#ifndef GODWIT_LEECHER_RATE_LIMIT_H
#define GODWIT_LEECHER_RATE_LIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Microseconds on a monotonic clock. */
typedef uint64_t rate_limit_clock(void *arg);

/* rate, burst, catch_up, clock: set by rate_limit_init, read-only afterwards; the
 * rest is owned by lock (a leaf: no other lock is taken under it). */
struct rate_limit {
    uint64_t rate;   /* bytes per second; 0: unlimited (then nothing else is used) */
    double burst;    /* the most tokens the bucket holds */
    double catch_up; /* the more it holds while a background pull waits */
    rate_limit_clock *clock;
    void *clock_arg;
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* broadcast when tokens come back or an urgent pull leaves */
    double tokens;           /* bytes that may go now; negative: a debt */
    uint64_t refilled_us;    /* when tokens was last brought up to date */
    uint64_t largest;        /* the largest background take so far */
    unsigned urgent_waiting; /* urgent pulls waiting: background ones wait behind them */
    unsigned waiting;        /* background pulls waiting for tokens */
    uint64_t throttled_us;   /* time with a background pull waiting, up to throttle_start */
    uint64_t throttle_start; /* when waiting last went from 0 to 1 */
    double forfeited;        /* tokens the burst-and-catch-up ceiling dropped while a
                                background pull waited: it woke over CATCH_UP_MS late */
};

enum { RATE_LIMIT_BURST_MS = 5, RATE_LIMIT_CATCH_UP_MS = 50, RATE_LIMIT_BORROW_MS = 1000 };

/* BYTES_PER_SECOND 0: unlimited. CLOCK NULL: CLOCK_MONOTONIC. */
void rate_limit_init(struct rate_limit *r, uint64_t bytes_per_second, rate_limit_clock *clock,
                     void *clock_arg);
void rate_limit_destroy(struct rate_limit *r);

/* Takes BYTES if they may go now (returns 0), or returns the microseconds
 * until they may (at least 1) and takes nothing. URGENT: see above. */
uint64_t rate_limit_try(struct rate_limit *r, uint64_t bytes, bool urgent);
/* Waits until BYTES may go, then takes them. */
void rate_limit_acquire(struct rate_limit *r, uint64_t bytes, bool urgent);
/* A pull that took TAKEN bytes carried USED on the wire: the difference
 * goes back to the bucket (or is charged, if USED is larger). */
void rate_limit_settle(struct rate_limit *r, uint64_t taken, uint64_t used);
/* Microseconds, in all, during which a background pull waited for tokens:
 * the pull was bound by the cap (for Status and /metrics). */
uint64_t rate_limit_throttled_us(struct rate_limit *r);
/* Bytes of the rate lost, in all, because a waiting background pull woke
 * more than CATCH_UP_MS after its tokens were there (a loaded machine's
 * scheduler, not the cap): the pull got the rate less these. */
uint64_t rate_limit_forfeited_bytes(struct rate_limit *r);

/* Parses a --max-bandwidth value: bytes per second, a number with an
 * optional K, M, G or T suffix (powers of 1024, as --batch; "B", "iB" and
 * "/s" may follow: 50M, 50MiB/s), or "0" / "none" for no limit. -1 if it
 * does not parse. */
int rate_limit_parse(const char *text, uint64_t *bytes_per_second);

#endif
