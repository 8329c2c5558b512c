/* SPDX-License-Identifier: MIT */
/* The values behind the metrics: gauges as atomic double bits and
 * fixed-bucket histograms, updated lock-free from any thread. */
#include "metrics.h"

#include <errno.h>
#include <string.h>
#include <time.h>

const uint64_t metric_latency_bounds_us[] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
const size_t metric_latency_n_bounds =
    sizeof metric_latency_bounds_us / sizeof metric_latency_bounds_us[0];

void metric_gauge_set(struct metric_gauge *g, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    atomic_store_explicit(&g->bits, bits, memory_order_relaxed);
}

double metric_gauge_get(const struct metric_gauge *g)
{
    uint64_t bits = atomic_load_explicit(&g->bits, memory_order_relaxed);
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

int metric_histogram_init(struct metric_histogram *h, const uint64_t *bounds, size_t n_bounds,
                          double scale)
{
    if (n_bounds > METRIC_MAX_BUCKETS) {
        errno = EINVAL;
        return -1;
    }
    h->bounds = bounds;
    h->n_bounds = n_bounds;
    h->scale = scale;
    for (size_t i = 0; i <= METRIC_MAX_BUCKETS; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, 0);
    return 0;
}

void metric_histogram_observe(struct metric_histogram *h, uint64_t value)
{
    size_t i = 0;
    while (i < h->n_bounds && value > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

uint64_t metric_histogram_count(const struct metric_histogram *h)
{
    uint64_t count = 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        count += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return count;
}

uint64_t metric_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
