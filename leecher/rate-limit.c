/* SPDX-License-Identifier: MIT */
/* The --max-bandwidth token bucket (rate-limit.h): a balance of bytes
 * refilled from the clock, the rule of who may overdraw it, and a
 * condition for the pulls that wait. */
#include "rate-limit.h"

#include "cleanup.h"
#include "options.h"

#include <string.h>
#include <time.h>

enum { URGENT_RECHECK_US = 1000 };

static uint64_t monotonic_us(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rate_limit_init(struct rate_limit *r, uint64_t bytes_per_second, rate_limit_clock *clock,
                     void *clock_arg)
{
    *r = (struct rate_limit){.rate = bytes_per_second,
                             .burst = (double)bytes_per_second * RATE_LIMIT_BURST_MS / 1000,
                             .catch_up = (double)bytes_per_second * RATE_LIMIT_CATCH_UP_MS / 1000,
                             .clock = clock ? clock : monotonic_us,
                             .clock_arg = clock_arg};
    r->tokens = r->burst;
    r->refilled_us = r->clock(r->clock_arg);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&r->lock, NULL);
}

void rate_limit_destroy(struct rate_limit *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

/* Brings tokens up to NOW, with lock held: at most the burst, or the
 * burst and the catch-up while a background pull waits (the tokens that
 * came in while it overslept are its due, not an idle link's savings). */
static void refill(struct rate_limit *r, uint64_t now)
{
    if (now > r->refilled_us) {
        double most = r->burst + (r->waiting ? r->catch_up : 0);
        r->tokens += (double)(now - r->refilled_us) * (double)r->rate / 1e6;
        if (r->tokens > most) {
            if (r->waiting)
                r->forfeited += r->tokens - most;
            r->tokens = most;
        }
    }
    r->refilled_us = now > r->refilled_us ? now : r->refilled_us;
}

/* The balance below which a pull waits, with lock held: background pulls
 * wait for any debt; urgent ones may borrow a second of the rate beyond
 * what the largest background pull leaves. */
static double floor_of(const struct rate_limit *r, bool urgent)
{
    if (!urgent)
        return 0;
    return -((double)r->rate * RATE_LIMIT_BORROW_MS / 1000 + (double)r->largest);
}

/* rate_limit_try with lock held. */
static uint64_t try_locked(struct rate_limit *r, uint64_t bytes, bool urgent)
{
    refill(r, r->clock(r->clock_arg));
    double floor = floor_of(r, urgent);
    if (r->tokens >= floor && (urgent || !r->urgent_waiting)) {
        r->tokens -= (double)bytes;
        if (!urgent && bytes > r->largest)
            r->largest = bytes;
        return 0;
    }
    if (r->tokens >= floor)
        return URGENT_RECHECK_US; /* behind an urgent pull, whose leaving wakes us earlier */
    double short_us = (floor - r->tokens) * 1e6 / (double)r->rate;
    return short_us >= 1 ? (uint64_t)short_us : 1;
}

uint64_t rate_limit_try(struct rate_limit *r, uint64_t bytes, bool urgent)
{
    if (!r->rate)
        return 0;
    LOCK_FOR_SCOPE(&r->lock);
    return try_locked(r, bytes, urgent);
}

/* Counts a pull in or out of the waiters, with lock held; background
 * waiters also count towards throttled_us. */
static void note_waiting(struct rate_limit *r, bool urgent, bool starts)
{
    if (urgent && starts) {
        r->urgent_waiting++;
        return;
    }
    if (urgent) {
        r->urgent_waiting--;
        pthread_cond_broadcast(&r->changed); /* background pulls may go again */
        return;
    }
    uint64_t now = r->clock(r->clock_arg);
    if (starts && r->waiting++ == 0)
        r->throttle_start = now;
    if (!starts && --r->waiting == 0)
        r->throttled_us += now - r->throttle_start;
}

static void wait_us(struct rate_limit *r, uint64_t us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + us * 1000;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&r->changed, &r->lock, &ts);
}

void rate_limit_acquire(struct rate_limit *r, uint64_t bytes, bool urgent)
{
    if (!r->rate)
        return;
    LOCK_FOR_SCOPE(&r->lock);
    uint64_t us = try_locked(r, bytes, urgent);
    if (!us)
        return;
    note_waiting(r, urgent, true);
    do
        wait_us(r, us);
    while ((us = try_locked(r, bytes, urgent)));
    note_waiting(r, urgent, false);
}

void rate_limit_settle(struct rate_limit *r, uint64_t taken, uint64_t used)
{
    if (!r->rate || taken == used)
        return;
    LOCK_FOR_SCOPE(&r->lock);
    r->tokens += (double)taken - (double)used;
    if (r->tokens > r->burst)
        r->tokens = r->burst;
    pthread_cond_broadcast(&r->changed);
}

uint64_t rate_limit_throttled_us(struct rate_limit *r)
{
    if (!r->rate)
        return 0;
    LOCK_FOR_SCOPE(&r->lock);
    uint64_t now = r->clock(r->clock_arg);
    return r->throttled_us + (r->waiting ? now - r->throttle_start : 0);
}

uint64_t rate_limit_forfeited_bytes(struct rate_limit *r)
{
    if (!r->rate)
        return 0;
    LOCK_FOR_SCOPE(&r->lock);
    return (uint64_t)r->forfeited;
}

int rate_limit_parse(const char *text, uint64_t *bytes_per_second)
{
    if (!text)
        return -1;
    if (strcmp(text, "none") == 0) {
        *bytes_per_second = 0;
        return 0;
    }
    char number[32];
    size_t len = strlen(text);
    if (len >= 2 && strcmp(text + len - 2, "/s") == 0)
        len -= 2;
    if (len == 0 || len >= sizeof number)
        return -1;
    memcpy(number, text, len);
    number[len] = '\0';
    return parse_size(number, bytes_per_second);
}
