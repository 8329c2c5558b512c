/* SPDX-License-Identifier: MIT */
/* godwit-metrics-bench: what the metrics cost. The hot-path pieces (a
 * counter add, a histogram observation, the two clock reads around a timed
 * call), alone and with THREADS threads hitting the same metric, and one
 * scrape's rendering of a leecher-sized page (three histograms, twenty
 * families). Prints one line per measurement, ns per operation.
 *
 *   godwit-metrics-bench [--iterations N] [--threads N]
 */
#include "metrics.h"
#include "options.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct shared {
    struct metric_counter counter;
    struct metric_histogram histogram;
    unsigned iterations;
    int what; /* 0: counter, 1: histogram, 2: clock pair + histogram */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *hammer(void *arg)
{
    struct shared *s = arg;
    for (unsigned i = 0; i < s->iterations; i++) {
        if (s->what == 0) {
            metric_counter_add(&s->counter, 1);
        } else if (s->what == 1) {
            metric_histogram_observe(&s->histogram, (i * 2654435761u) % 200000);
        } else {
            uint64_t start = metric_now_us();
            metric_histogram_observe(&s->histogram, metric_now_us() - start);
        }
    }
    return NULL;
}

/* ns per operation with THREADS threads doing ITERATIONS each at once. */
static double measure(struct shared *s, unsigned threads)
{
    pthread_t ids[64];
    uint64_t start = now_ns();
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&ids[t], NULL, hammer, s);
    for (unsigned t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    return (double)(now_ns() - start) / s->iterations;
}

/* A page shaped like the leecher's: 20 families, 3 histograms. */
static void render_page(const struct metric_histogram *h, struct metrics_text *t)
{
    static const char *const states[] = {"precopy", "finalizing", "postcopy", "complete", "failed"};
    metrics_text_state_set(t, "godwit_leecher_state", "State.", "state", states, 5, 0);
    for (int i = 0; i < 16; i++) {
        char name[64];
        snprintf(name, sizeof name, "godwit_bench_metric_%d_total", i);
        metrics_text_counter(t, name, "A counter of the benchmark.", (uint64_t)i * 123456789u);
    }
    metrics_text_histogram(t, "godwit_bench_a_seconds", "A histogram.", h);
    metrics_text_histogram(t, "godwit_bench_b_seconds", "A histogram.", h);
    metrics_text_histogram(t, "godwit_bench_c_seconds", "A histogram.", h);
}

int main(int argc, char **argv)
{
    unsigned iterations = 10000000, threads = 2;
    struct option_spec specs[] = {
        {"iterations", OPTION_UINT, &iterations, "N", "operations per thread (default 10M)"},
        {"threads", OPTION_UINT, &threads, "N", "threads for the contended runs (default 2)"},
    };
    const struct program_info info = {"godwit-metrics-bench", "measure what the metrics cost",
                                      "[--iterations N] [--threads N]"};
    int status = options_parse_main(&info, specs, 2, argc, argv, NULL, NULL);
    if (status >= 0)
        return status;
    if (threads < 1 || threads > 64 || iterations < 1) {
        fprintf(stderr, "godwit-metrics-bench: --threads must be 1 to 64, --iterations >= 1\n");
        return 2;
    }
    static struct shared s;
    s.iterations = iterations;
    metric_histogram_init(&s.histogram, metric_latency_bounds_us, metric_latency_n_bounds, 1e-6);
    static const char *const names[] = {"counter add", "histogram observe",
                                        "clock pair + histogram observe"};
    for (int what = 0; what < 3; what++) {
        s.what = what;
        printf("%-32s 1 thread: %6.1f ns/op   %u threads, one metric: %6.1f ns/op per thread\n",
               names[what], measure(&s, 1), threads, measure(&s, threads));
    }
    struct metrics_text t;
    unsigned renders = 2000;
    size_t bytes = 0;
    uint64_t start = now_ns();
    for (unsigned i = 0; i < renders; i++) {
        metrics_text_init(&t);
        render_page(&s.histogram, &t);
        bytes = t.length;
        metrics_text_free(&t);
    }
    printf("render a leecher-sized page (%zu bytes): %.1f us\n", bytes,
           (double)(now_ns() - start) / renders / 1000.0);
    return 0;
}
