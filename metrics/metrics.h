/* SPDX-License-Identifier: MIT */
/* Prometheus metrics for both daemons: counters, gauges and fixed-bucket
 * histograms that any thread updates with relaxed atomics (no locks), the
 * text exposition format they are rendered in, and the HTTP endpoint
 * (libmicrohttpd) that serves it at /metrics. A daemon describes its
 * metrics in a collect callback that runs at scrape time; values it
 * already keeps elsewhere are read there, so the hot path pays nothing. */
#ifndef GODWIT_METRICS_H
#define GODWIT_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A monotonically growing count. Any thread; relaxed atomics. */
struct metric_counter {
    _Atomic uint64_t value;
};

static inline void metric_counter_add(struct metric_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline uint64_t metric_counter_get(const struct metric_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

/* A value that goes up and down (a double stored as its bits). Any thread. */
struct metric_gauge {
    _Atomic uint64_t bits;
};

void metric_gauge_set(struct metric_gauge *g, double value);
double metric_gauge_get(const struct metric_gauge *g);

enum { METRIC_MAX_BUCKETS = 24 };

/* Fixed buckets over integer observations in some base unit (e.g.
 * microseconds), rendered scaled to the metric's unit (e.g. seconds).
 * bounds, n_bounds and scale are set by metric_histogram_init before any
 * thread observes; counts and sum are relaxed atomics, any thread. */
struct metric_histogram {
    const uint64_t *bounds;                          /* ascending upper bounds, in base units */
    size_t n_bounds;                                 /* at most METRIC_MAX_BUCKETS */
    double scale;                                    /* metric unit per base unit, e.g. 1e-6 */
    _Atomic uint64_t counts[METRIC_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    _Atomic uint64_t sum;                            /* base units */
};

/* Latency buckets in microseconds, 50 us to 10 s (for SCALE 1e-6). */
extern const uint64_t metric_latency_bounds_us[];
extern const size_t metric_latency_n_bounds;

/* Returns -1 (EINVAL) if N_BOUNDS exceeds METRIC_MAX_BUCKETS. */
int metric_histogram_init(struct metric_histogram *h, const uint64_t *bounds, size_t n_bounds,
                          double scale);
void metric_histogram_observe(struct metric_histogram *h, uint64_t value);
/* Observations so far, over all buckets. */
uint64_t metric_histogram_count(const struct metric_histogram *h);

/* Monotonic clock in microseconds, for timing observations. */
uint64_t metric_now_us(void);

/* The text exposition format (version 0.0.4), built into a growing buffer.
 * One scrape owns one; failed is set (and writing stops) if it cannot grow. */
struct metrics_text {
    char *data;
    size_t length, room;
    bool failed;
};

struct metric_label {
    const char *name, *value; /* value is escaped when written */
};

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

void metrics_text_init(struct metrics_text *t);
void metrics_text_free(struct metrics_text *t);

/* The # HELP and # TYPE lines that open a family. */
void metrics_text_family(struct metrics_text *t, const char *name, enum metric_type type,
                         const char *help);
/* One sample line: NAME{LABELS} VALUE. */
void metrics_text_sample(struct metrics_text *t, const char *name,
                         const struct metric_label *labels, size_t n_labels, double value);
/* A family with one unlabelled sample. */
void metrics_text_counter(struct metrics_text *t, const char *name, const char *help,
                          uint64_t value);
void metrics_text_gauge(struct metrics_text *t, const char *name, const char *help, double value);
void metrics_text_histogram(struct metrics_text *t, const char *name, const char *help,
                            const struct metric_histogram *h);
/* An enum as a gauge family: one sample per value, LABEL="value", 1 for
 * CURRENT and 0 for the others. */
void metrics_text_state_set(struct metrics_text *t, const char *name, const char *help,
                            const char *label, const char *const *values, size_t n_values,
                            size_t current);

/* Fills OUT with the daemon's metrics; runs on the server's one thread. */
typedef void (*metrics_collect_fn)(void *opaque, struct metrics_text *out);

struct metrics_server;

/* Serves GET/HEAD /metrics on ADDR (other paths: 404; other methods: 405)
 * from its own thread. *PORT receives the bound port (ADDR may ask for
 * port 0). NULL with one sentence in ERR (and errno) on failure. */
struct metrics_server *metrics_server_start(const struct sockaddr *addr, socklen_t addr_len,
                                            metrics_collect_fn collect, void *opaque, int *port,
                                            char *err, size_t errlen);
/* Stops serving and frees S (NULL is fine); the callback is not called
 * afterwards. */
void metrics_server_stop(struct metrics_server *s);

#endif
