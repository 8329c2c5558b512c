/* SPDX-License-Identifier: MIT */
/* Unit test: the bulk byte budget (leecher/bulk-budget.c) on an injected
 * clock, against a simulated link: a FIFO bottleneck of RATE bytes/s
 * behind a fixed per-call cost. On a slow link the budget shrinks to about
 * rate x 2 x round trip + a few ms of the link, so little waits at the
 * bottleneck, and the link stays busy; on a fast one it grows until the
 * link is full, its queue at most BULK_BUDGET_QUEUE_MAX; after a slowdown
 * it follows within a second. Then the real-time parts: a reservation
 * larger than the budget goes alone, the drain, and many workers woken
 * one at a time, none left waiting. */
#include "bulk-budget.h"
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static uint64_t fake_now(void *arg)
{
    return *(uint64_t *)arg;
}

enum { MAX_CALLS = 64, CONTROL_RTT_US = 300 };

/* A simulated link and the workers' calls on it, FIFO: they complete in
 * the order they were sent. */
struct link {
    double rate;    /* bytes/s at the bottleneck */
    uint64_t cost;  /* microseconds of a call before its reply reaches the bottleneck */
    uint64_t now;   /* the budget's clock */
    double free_at; /* when the bottleneck is idle again */
    unsigned n;     /* calls in flight */
    struct call {
        uint64_t start, bytes;
        double done;
    } calls[MAX_CALLS];
    uint64_t delivered; /* bytes, in all */
    uint64_t most_in_flight;
};

static uint64_t in_flight(const struct link *k)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < k->n; i++)
        sum += k->calls[i].bytes;
    return sum;
}

/* Sends what the budget lets WORKERS workers send, chunks of CHUNK (at
 * most MAX a call), as puller.c does. */
static void send_calls(struct link *k, struct bulk_budget *b, unsigned workers, uint32_t chunk,
                       unsigned max)
{
    while (k->n < workers) {
        uint64_t bytes = (uint64_t)bulk_budget_chunks(b, chunk, max) * chunk;
        uint64_t busy = in_flight(k);
        if (busy > 0 && busy + bytes > bulk_budget_limit(b))
            return; /* it would wait in bulk_budget_acquire */
        bulk_budget_acquire(b, bytes);
        double enter = (double)k->now + (double)k->cost;
        double begin = enter > k->free_at ? enter : k->free_at;
        k->free_at = begin + (double)bytes * 1e6 / k->rate;
        k->calls[k->n++] = (struct call){k->now, bytes, k->free_at};
        busy += bytes;
        k->most_in_flight = busy > k->most_in_flight ? busy : k->most_in_flight;
    }
}

/* Runs the link for SECONDS of fake time. */
static void run_link(struct link *k, struct bulk_budget *b, double seconds, uint32_t chunk,
                     unsigned max)
{
    uint64_t end = k->now + (uint64_t)(seconds * 1e6);
    k->delivered = 0, k->most_in_flight = 0;
    while (k->now < end) {
        send_calls(k, b, 16, chunk, max);
        struct call c = k->calls[0];
        k->now = (uint64_t)c.done + 1;
        for (unsigned i = 1; i < k->n; i++)
            k->calls[i - 1] = k->calls[i];
        k->n--;
        k->delivered += c.bytes;
        bulk_budget_release(b, c.bytes, true, k->now - c.start);
    }
}

static void start_link(struct link *k, struct bulk_budget *b, double rate, uint64_t cost)
{
    *k = (struct link){.rate = rate, .cost = cost, .now = 1000};
    k->free_at = (double)k->now;
    bulk_budget_init(b, fake_now, &k->now);
    bulk_budget_round_trip(b, CONTROL_RTT_US); /* Info at start-up */
}

/* The budget's target for the link's rate. */
static double target(double rate)
{
    double queue = rate * BULK_BUDGET_QUEUE_US / 1e6;
    return rate * 2.0 * CONTROL_RTT_US / 1e6 +
           (queue < BULK_BUDGET_QUEUE_MAX ? queue : BULK_BUDGET_QUEUE_MAX);
}

static void test_slow_link(void)
{
    struct link k;
    struct bulk_budget b;
    start_link(&k, &b, 6e6, 200);
    CHECK(bulk_budget_limit(&b) == BULK_BUDGET_START, "the budget starts at %d", BULK_BUDGET_START);
    run_link(&k, &b, 3, 256 << 10, 4); /* converges */
    run_link(&k, &b, 5, 256 << 10, 4);
    double rate = (double)k.delivered / 5;
    printf("6 MB/s, 256 KiB chunks: budget %llu B, the most in flight %llu B, %.2f MB/s\n",
           (unsigned long long)bulk_budget_limit(&b), (unsigned long long)k.most_in_flight,
           rate / 1e6);
    CHECK(bulk_budget_limit(&b) < 2 * target(6e6),
          "budget %llu, not about rate x (2 x round trip + queue)",
          (unsigned long long)bulk_budget_limit(&b));
    CHECK(bulk_budget_chunks(&b, 256 << 10, 4) == 1, "one chunk a call");
    CHECK(k.most_in_flight == 256 << 10, "one chunk in flight at a time, not %llu B",
          (unsigned long long)k.most_in_flight);
    CHECK(rate >= 0.95 * 6e6, "the link is kept busy: %.2f MB/s of 6", rate / 1e6);
    bulk_budget_destroy(&b);
}

static void test_medium_link(void)
{
    struct link k;
    struct bulk_budget b;
    start_link(&k, &b, 100e6, 200);
    run_link(&k, &b, 3, 64 << 10, 16);
    run_link(&k, &b, 5, 64 << 10, 16);
    double rate = (double)k.delivered / 5, limit = (double)bulk_budget_limit(&b);
    double queued_ms = ((double)k.most_in_flight / 100e6) * 1000;
    printf("100 MB/s, 64 KiB chunks: budget %.0f B, %.1f MB/s, the longest queue %.1f ms\n", limit,
           rate / 1e6, queued_ms);
    CHECK(limit >= 0.8 * target(100e6) && limit <= 1.2 * target(100e6),
          "budget %.0f, not about rate x (2 x round trip + queue) (%.0f)", limit, target(100e6));
    CHECK(queued_ms < 15, "the bottleneck held %.1f ms of bulk data", queued_ms);
    CHECK(rate >= 0.9 * 100e6, "the link is kept busy: %.1f MB/s of 100", rate / 1e6);
    bulk_budget_destroy(&b);
}

/* A link the budget held back (it was slow) becomes fast: the budget
 * grows until the link is full; then it slows down again: the budget
 * follows within a second. */
static void test_grow_and_shrink(void)
{
    struct link k;
    struct bulk_budget b;
    start_link(&k, &b, 6e6, 1000);
    run_link(&k, &b, 3, 1 << 20, 1);
    k.rate = 2e9;
    run_link(&k, &b, 2, 1 << 20, 1);
    run_link(&k, &b, 2, 1 << 20, 1);
    double rate = (double)k.delivered / 2;
    printf("6 MB/s, then 2 GB/s (1 ms a call): budget %llu B, %.0f MB/s\n",
           (unsigned long long)bulk_budget_limit(&b), rate / 1e6);
    CHECK(rate >= 0.8 * 2e9, "the budget did not grow to fill a fast link: %.0f MB/s of 2000",
          rate / 1e6);
    CHECK(bulk_budget_limit(&b) <= (uint64_t)(target(2e9) * 1.01),
          "on a fast link the queue is at most %d bytes: budget %llu", BULK_BUDGET_QUEUE_MAX,
          (unsigned long long)bulk_budget_limit(&b));
    k.rate = 6e6;
    run_link(&k, &b, 1.5, 1 << 20, 1);
    printf("then 6 MB/s again for 1.5 s: budget %llu B\n",
           (unsigned long long)bulk_budget_limit(&b));
    CHECK(bulk_budget_limit(&b) < 1 << 20, "the budget %llu did not follow the slowdown",
          (unsigned long long)bulk_budget_limit(&b));
    bulk_budget_destroy(&b);
}

static void *release_later(void *arg)
{
    usleep(50000);
    bulk_budget_release(arg, 8 << 20, true, 1000);
    return NULL;
}

/* Real time: a reservation larger than the budget waits until nothing
 * else is in flight, then goes alone; drain waits for the last bytes. */
static void test_alone_and_drain(void)
{
    struct bulk_budget b;
    bulk_budget_init(&b, NULL, NULL);
    CHECK(bulk_budget_drain(&b, 1000), "nothing in flight: drained at once");
    bulk_budget_acquire(&b, 8 << 20); /* more than the budget: goes alone */
    uint64_t start = test_now_us();
    CHECK(!bulk_budget_drain(&b, 20000), "drained with 8 MiB in flight");
    CHECK(test_now_us() - start >= 19000, "the drain gave up before its timeout");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_later, &b) == 0, "pthread_create");
    bulk_budget_acquire(&b, 8 << 20); /* waits for the release */
    CHECK(test_now_us() - start >= 50000, "a second reservation over the budget did not wait");
    pthread_join(t, NULL);
    CHECK(pthread_create(&t, NULL, release_later, &b) == 0, "pthread_create");
    CHECK(bulk_budget_drain(&b, 5000000), "not drained after the last release");
    pthread_join(t, NULL);
    bulk_budget_destroy(&b);
}

enum { CONTENDERS = 8, ROUNDS = 300 };

struct contest {
    struct bulk_budget budget;
    atomic_uint mib_in_flight, most_mib, finished;
};

/* One worker: reservations of 1 or 3 MiB, held for a moment, given back
 * undelivered (the budget stays at BULK_BUDGET_START, 4 MiB). */
static void *contend(void *arg)
{
    struct contest *c = arg;
    for (unsigned i = 0; i < ROUNDS; i++) {
        unsigned mib = i % 4 == 3 ? 3 : 1;
        bulk_budget_acquire(&c->budget, (uint64_t)mib << 20);
        unsigned now = atomic_fetch_add(&c->mib_in_flight, mib) + mib;
        for (unsigned most = atomic_load(&c->most_mib);
             now > most && !atomic_compare_exchange_weak(&c->most_mib, &most, now);)
            ;
        if (i % 16 == 0)
            usleep(100);
        atomic_fetch_sub(&c->mib_in_flight, mib);
        bulk_budget_release(&c->budget, (uint64_t)mib << 20, false, 0);
    }
    atomic_fetch_add(&c->finished, 1);
    return NULL;
}

/* Real time: each release wakes one waiter, which passes the wake on while
 * there is room; no reservation is left waiting, none exceeds the budget. */
static void test_contention(void)
{
    struct contest c = {.mib_in_flight = 0};
    bulk_budget_init(&c.budget, NULL, NULL);
    pthread_t t[CONTENDERS];
    for (unsigned i = 0; i < CONTENDERS; i++)
        CHECK(pthread_create(&t[i], NULL, contend, &c) == 0, "pthread_create");
    uint64_t deadline = test_now_us() + 60000000;
    while (atomic_load(&c.finished) < CONTENDERS && test_now_us() < deadline)
        usleep(1000);
    CHECK(atomic_load(&c.finished) == CONTENDERS,
          "%u of %u workers still wait for the budget after 60 s: a wake-up was lost",
          CONTENDERS - atomic_load(&c.finished), CONTENDERS);
    for (unsigned i = 0; i < CONTENDERS; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&c.most_mib) <= BULK_BUDGET_START >> 20, "%u MiB were in flight at once",
          atomic_load(&c.most_mib));
    CHECK(bulk_budget_drain(&c.budget, 1000), "bytes left in flight");
    bulk_budget_destroy(&c.budget);
}

int main(void)
{
    test_slow_link();
    test_medium_link();
    test_grow_and_shrink();
    test_alone_and_drain();
    test_contention();
    return 0;
}
