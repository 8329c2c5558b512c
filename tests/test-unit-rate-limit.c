/* SPDX-License-Identifier: MIT */
/* Unit test: the --max-bandwidth token bucket (leecher/rate-limit.c) on an
 * injected clock: the long-run rate, the burst, the debt, urgent pulls
 * going first, settling to the wire bytes, a late wake-up keeping its
 * tokens, what a very late one forfeits, and parsing RATE. */
#include "rate-limit.h"
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static uint64_t fake_now(void *arg)
{
    return *(uint64_t *)arg;
}

/* Background pulls of PULL bytes for SECONDS of fake time, each waiting
 * what the bucket says: the bytes that went. */
static uint64_t pull_for(struct rate_limit *r, uint64_t *clock, uint64_t pull, uint64_t seconds)
{
    uint64_t end = *clock + seconds * 1000000, sent = 0;
    while (*clock < end) {
        uint64_t wait = rate_limit_try(r, pull, false);
        if (wait)
            *clock += wait;
        else
            sent += pull;
    }
    return sent;
}

static void test_unlimited(void)
{
    struct rate_limit r;
    uint64_t clock = 0;
    rate_limit_init(&r, 0, fake_now, &clock);
    for (int i = 0; i < 1000; i++)
        CHECK(rate_limit_try(&r, 16 << 20, false) == 0, "no limit: never a wait");
    CHECK(rate_limit_throttled_us(&r) == 0, "no limit: never throttled");
    rate_limit_destroy(&r);
}

static void test_long_run_rate(void)
{
    const uint64_t rates[] = {1000000, 6 << 20, 100 << 20, 1ull << 30};
    const uint64_t pulls[] = {4096, 65536, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        for (size_t j = 0; j < sizeof pulls / sizeof pulls[0]; j++) {
            struct rate_limit r;
            uint64_t clock = 1000;
            rate_limit_init(&r, rates[i], fake_now, &clock);
            uint64_t sent = pull_for(&r, &clock, pulls[j], 20);
            /* At most the rate plus one burst and one pull; at least the
             * rate less one pull (the last one may be waiting). */
            double most = (double)rates[i] * 20 + r.burst + (double)pulls[j];
            double least = (double)rates[i] * 20 - (double)pulls[j];
            CHECK((double)sent <= most && (double)sent >= least,
                  "rate %llu, pulls of %llu: %llu bytes in 20 s", (unsigned long long)rates[i],
                  (unsigned long long)pulls[j], (unsigned long long)sent);
            rate_limit_destroy(&r);
        }
    }
}

static void test_burst_and_debt(void)
{
    struct rate_limit r;
    uint64_t clock = 0;
    rate_limit_init(&r, 1000000, fake_now, &clock); /* 1 MB/s: a burst of 5000 bytes */
    CHECK(r.burst == 5000, "a burst of 5 ms of the rate, not %.0f", r.burst);
    clock += 60 * 1000000; /* an idle minute adds no more than the burst */
    CHECK(rate_limit_try(&r, 5000, false) == 0, "the burst goes at once");
    CHECK(rate_limit_try(&r, 100000, false) == 0, "a pull larger than the tokens goes into debt");
    CHECK(rate_limit_try(&r, 1, false) == 100000, "the next one waits the debt out: 100 ms");
    clock += 99999;
    CHECK(rate_limit_try(&r, 1, false) == 1, "one microsecond short");
    clock += 1;
    CHECK(rate_limit_try(&r, 1, false) == 0, "debt paid");
    rate_limit_destroy(&r);
}

static void test_urgent_first(void)
{
    struct rate_limit r;
    uint64_t clock = 0;
    rate_limit_init(&r, 1000000, fake_now, &clock);
    CHECK(rate_limit_try(&r, 1000000, false) == 0, "a background pull of a second's worth");
    CHECK(rate_limit_try(&r, 65536, false) > 0, "a background pull waits for the debt");
    CHECK(rate_limit_try(&r, 65536, true) == 0, "an urgent pull does not wait behind it");
    uint64_t wait = rate_limit_try(&r, 65536, false);
    CHECK(wait >= 1000000 + 65536 - 5000, "the background pulls pay for it (wait %llu us)",
          (unsigned long long)wait);
    /* Urgent pulls alone, faster than the rate: they overdraw the bucket by
     * a second of the rate beyond the largest background pull (1 MB here),
     * then wait like the rest. */
    while (rate_limit_try(&r, 65536, true) == 0)
        continue;
    CHECK(r.tokens < -2000000 && r.tokens >= -2000000 - 65536, "urgent pulls overdrew to %.0f",
          r.tokens);
    uint64_t sent = 0, end = clock + 10000000;
    while (clock < end) {
        uint64_t w = rate_limit_try(&r, 65536, true);
        clock += w;
        sent += w ? 0 : 65536;
    }
    CHECK(sent <= 10000000 + 65536, "urgent pulls alone stay within the rate: %llu in 10 s",
          (unsigned long long)sent);
    /* A waiting urgent pull holds background pulls back even with tokens. */
    clock += 10000000;
    r.urgent_waiting = 1;
    CHECK(rate_limit_try(&r, 1, false) > 0, "background waits behind a waiting urgent pull");
    r.urgent_waiting = 0;
    CHECK(rate_limit_try(&r, 1, false) == 0, "and goes once it left");
    rate_limit_destroy(&r);
}

static void test_settle(void)
{
    struct rate_limit r;
    uint64_t clock = 0;
    rate_limit_init(&r, 1000000, fake_now, &clock);
    CHECK(rate_limit_try(&r, 1000000, false) == 0, "a pull of 1 MB");
    rate_limit_settle(&r, 1000000, 5000); /* the reply was zero ranges but 5000 bytes */
    CHECK(r.tokens == 0, "zero ranges cost nothing: no debt left (%.0f)", r.tokens);
    CHECK(rate_limit_try(&r, 1000, false) == 0, "a pull of 1000");
    rate_limit_settle(&r, 1000, 51000); /* more on the wire than asked: charged */
    CHECK(rate_limit_try(&r, 1, false) == 51000, "the extra bytes are a debt of 51 ms");
    rate_limit_destroy(&r);
}

struct acquirer {
    struct rate_limit *r;
    uint64_t bytes;
};

static void *acquire_thread(void *arg)
{
    struct acquirer *a = arg;
    rate_limit_acquire(a->r, a->bytes, false);
    return NULL;
}

/* The blocking path on the real clock: a second background pull returns
 * no earlier than the first one's debt is paid, and its wait counts as
 * throttled. (How much of the debt it waits depends on how late its thread
 * starts on a loaded machine; when it returns does not.) */
static void test_acquire_waits(void)
{
    struct rate_limit r;
    rate_limit_init(&r, 10000000, NULL, NULL); /* 10 MB/s: a burst of 50000 */
    uint64_t start = test_now_us();
    rate_limit_acquire(&r, 1000000, false); /* leaves a debt of 95 ms */
    struct acquirer a = {&r, 1};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, acquire_thread, &a) == 0, "pthread_create");
    pthread_join(thread, NULL);
    uint64_t took = test_now_us() - start;
    uint64_t throttled = rate_limit_throttled_us(&r);
    CHECK(took >= 94000, "the second pull returned after %llu us, before the 95 ms debt was paid",
          (unsigned long long)took);
    CHECK(throttled > 0 && throttled <= took, "throttled %llu us of %llu",
          (unsigned long long)throttled, (unsigned long long)took);
    rate_limit_destroy(&r);
}

static uint64_t atomic_fake_now(void *arg)
{
    return atomic_load((_Atomic uint64_t *)arg);
}

static unsigned background_waiting(struct rate_limit *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned waiting = r->waiting;
    pthread_mutex_unlock(&r->lock);
    return waiting;
}

/* A background pull that wakes 40 ms after its debt was paid (a loaded
 * machine) keeps those 40 ms of tokens, not just the 5 ms burst: the
 * bytes that went by then are exactly the rate times the time plus the
 * burst. (Without the catch-up a pull bound by an 8 MB/s cap got 0.56 of
 * it under ASan at load 19.) */
static void test_late_wake_keeps_tokens(void)
{
    struct rate_limit r;
    _Atomic uint64_t clock = 0;
    rate_limit_init(&r, 1000000, atomic_fake_now, &clock); /* 1 MB/s: a burst of 5000 */
    CHECK(rate_limit_try(&r, 105000, false) == 0, "the burst and a debt of 100 ms");
    struct acquirer a = {&r, 1};
    pthread_t thread;
    pthread_create(&thread, NULL, acquire_thread, &a);
    for (int waited = 0; background_waiting(&r) == 0; waited++) {
        CHECK(waited < 60000, "the pull did not start waiting in a minute");
        usleep(1000);
    }
    atomic_store(&clock, 140000); /* the debt was paid at 100 ms */
    pthread_join(thread, NULL);
    CHECK(rate_limit_try(&r, 39999, false) == 0 && rate_limit_try(&r, 1, false) == 0,
          "the 40 ms the waiting pull overslept were lost");
    CHECK(rate_limit_try(&r, 1, false) == 1, "more than the rate went: 145000 bytes in 140 ms");
    atomic_store(&clock, 60000000); /* an idle minute: the burst, not the catch-up */
    CHECK(rate_limit_try(&r, 5000, false) == 0 && rate_limit_try(&r, 1, false) == 0 &&
              rate_limit_try(&r, 1, false) == 1,
          "an idle link saved more than the burst");
    CHECK(rate_limit_forfeited_bytes(&r) == 0, "forfeited %llu bytes: none was over 50 ms late",
          (unsigned long long)rate_limit_forfeited_bytes(&r));
    rate_limit_destroy(&r);
}

/* A waiting pull that wakes 300 ms after its debt was paid keeps the burst
 * and the 50 ms catch-up; the other 250 ms of the rate are forfeited, and
 * counted so: the pull got the rate less exactly those. An idle link's
 * savings beyond the burst are not forfeits (no pull waited for them). */
static void test_forfeited(void)
{
    struct rate_limit r;
    _Atomic uint64_t clock = 0;
    rate_limit_init(&r, 1000000, atomic_fake_now, &clock); /* 1 MB/s */
    CHECK(rate_limit_try(&r, 105000, false) == 0, "the burst and a debt of 100 ms");
    struct acquirer a = {&r, 1};
    pthread_t thread;
    pthread_create(&thread, NULL, acquire_thread, &a);
    for (int waited = 0; background_waiting(&r) == 0; waited++) {
        CHECK(waited < 60000, "the pull did not start waiting in a minute");
        usleep(1000);
    }
    atomic_store(&clock, 400000); /* paid at 100 ms: 300 ms late */
    pthread_join(thread, NULL);
    uint64_t lost = rate_limit_forfeited_bytes(&r);
    CHECK(lost == 245000, "forfeited %llu bytes, not the 300 ms less 55 ms of the ceiling (245000)",
          (unsigned long long)lost);
    CHECK(rate_limit_try(&r, 54999, false) == 0 && rate_limit_try(&r, 1, false) == 0 &&
              rate_limit_try(&r, 1, false) == 1,
          "the late pull did not keep the burst and the catch-up (55000 less its 1), or kept more");
    atomic_store(&clock, 60000000); /* an idle minute */
    CHECK(rate_limit_try(&r, 1, false) == 0 && rate_limit_forfeited_bytes(&r) == lost,
          "an idle minute counted as forfeited");
    rate_limit_destroy(&r);
}

static void test_parse(void)
{
    const struct {
        const char *text;
        uint64_t want;
    } good[] = {{"0", 0},
                {"none", 0},
                {"1000000", 1000000},
                {"50M", 50ull << 20},
                {"50MB/s", 50ull << 20},
                {"50MiB/s", 50ull << 20},
                {"1G", 1ull << 30},
                {"512K/s", 512ull << 10}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t got = 1;
        CHECK(rate_limit_parse(good[i].text, &got) == 0 && got == good[i].want, "\"%s\" gave %llu",
              good[i].text, (unsigned long long)got);
    }
    const char *bad[] = {"", "/s", "fast", "-1", "5X", "50Mb/s", "50M/h", "1.5G", NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t got;
        CHECK(rate_limit_parse(bad[i], &got) < 0, "\"%s\" parsed", bad[i]);
    }
    uint64_t got;
    CHECK(rate_limit_parse(NULL, &got) < 0, "NULL parsed");
}

int main(void)
{
    test_unlimited();
    test_long_run_rate();
    test_burst_and_debt();
    test_urgent_first();
    test_settle();
    test_acquire_waits();
    test_late_wake_keeps_tokens();
    test_forfeited();
    test_parse();
    return 0;
}
