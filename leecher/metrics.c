/* SPDX-License-Identifier: MIT */
/* The leecher's /metrics: what docs/metrics.md lists under "leecher", read
 * at scrape time from the chunk map, the statistics atomics and (briefly,
 * once per scrape) the fields leecher->lock owns. */
#include "leecher.h"

#include "host-port.h"
#include "seeder-client.h"

#include <math.h>
#include <stdio.h>

static const char *const state_names[] = {
    [PRECOPY] = "precopy",   [FINALIZING] = "finalizing", [POSTCOPY] = "postcopy",
    [COMPLETE] = "complete", [FAILED] = "failed",
};

/* What the scrape copies under the lock. */
struct locked_view {
    enum leecher_state state;
    uint64_t downtime_us, source_dirty, round_trip_us;
    double dirty_rate;
    bool not_converging;
    unsigned stalled_rounds;
};

/* What a Finalize now would cost, in seconds: the figure Status reports
 * (leecher_predict_downtime_ms). NaN before the first round trip was
 * measured; 0 once Finalize is over. */
static double predicted_downtime(const struct leecher *l, const struct locked_view *v)
{
    if (v->state != PRECOPY)
        return 0;
    if (!v->round_trip_us)
        return NAN;
    return leecher_predict_downtime_ms(l, v->source_dirty, v->round_trip_us) / 1000;
}

/* DONE: complete or failed (the monitor that measures throughput stopped). */
static void collect_progress(const struct leecher *l, bool done, struct metrics_text *t)
{
    metrics_text_gauge(t, "godwit_leecher_image_size_bytes", "Size of the image being migrated.",
                       (double)l->geo.size);
    metrics_text_gauge(t, "godwit_leecher_chunk_size_bytes", "Size of one chunk.",
                       (double)l->geo.chunk_size);
    metrics_text_gauge(t, "godwit_leecher_image_chunks", "Chunks in the image.",
                       (double)l->geo.chunks);
    metrics_text_gauge(t, "godwit_leecher_local_chunks",
                       "Chunks whose current content is in the local image.",
                       (double)chunk_map_local(l->map));
    metrics_text_gauge(t, "godwit_leecher_workers", "Background pull workers.",
                       (double)l->n_workers);
    metrics_text_counter(t, "godwit_leecher_pulled_bytes_total",
                         "Bytes received in ReadAt replies (re-pulls included).",
                         atomic_load(&l->bytes_pulled));
    metrics_text_counter(t, "godwit_leecher_decoded_bytes_total",
                         "Bytes the data of those replies decoded to (more than received where "
                         "the seeder compressed it).",
                         atomic_load(&l->bytes_decoded));
    metrics_text_gauge(t, "godwit_leecher_compressing",
                       "1 while ReadAt asks the seeder for compressed data (--compress).",
                       seeder_client_compressing(l->seeder) ? 1 : 0);
    metrics_text_gauge(t, "godwit_leecher_pull_throughput_bytes_per_second",
                       "Bytes pulled per second over the last second (for history use "
                       "rate(godwit_leecher_pulled_bytes_total[1m])).",
                       done ? 0 : metric_gauge_get(&l->pull_throughput));
    metrics_text_counter(t, "godwit_leecher_pulled_chunks_total",
                         "Chunks received in ReadAt replies (re-pulls included).",
                         metric_counter_get(&l->pulled_chunks));
    metrics_text_histogram(t, "godwit_leecher_pull_duration_seconds",
                           "One successful ReadAt pull, from the call to the commit.", &l->pull_us);
    metrics_text_counter(t, "godwit_leecher_pull_retries_total",
                         "Pulls that failed and were tried again.",
                         metric_counter_get(&l->pull_retries));
    metrics_text_counter(t, "godwit_leecher_on_demand_pulls_total",
                         "Reads or writes of the export that had to wait for a missing chunk.",
                         metric_histogram_count(&l->on_demand_us));
    metrics_text_counter(t, "godwit_leecher_on_demand_bytes_total",
                         "Bytes the reads and writes that waited pulled (the ranges asked for).",
                         atomic_load(&l->on_demand_bytes));
    metrics_text_histogram(t, "godwit_leecher_on_demand_pull_duration_seconds",
                           "How long a read or write of the export waited for a missing chunk.",
                           &l->on_demand_us);
    metrics_text_gauge(t, "godwit_leecher_max_bandwidth_bytes_per_second",
                       "The --max-bandwidth cap on pulled bytes per second (0: no cap).",
                       (double)l->max_bandwidth);
    metrics_text_family(t, "godwit_leecher_bandwidth_throttled_seconds_total", METRIC_COUNTER,
                        "Time during which a background pull waited for --max-bandwidth.");
    metrics_text_sample(t, "godwit_leecher_bandwidth_throttled_seconds_total", NULL, 0,
                        (double)seeder_client_throttled_us(l->seeder) * 1e-6);
    metrics_text_counter(t, "godwit_leecher_bandwidth_forfeited_bytes_total",
                         "Bytes of --max-bandwidth lost because a waiting pull woke over 50 ms "
                         "late (a loaded machine, not the cap).",
                         seeder_client_forfeited_bytes(l->seeder));
    metrics_text_counter(t, "godwit_leecher_redirtied_chunks_total",
                         "Local chunks marked remote again because the source rewrote them.",
                         atomic_load(&l->chunks_redirtied));
    metrics_text_counter(t, "godwit_leecher_checksum_mismatches_total",
                         "ReadAt replies refused because their checksum did not match.",
                         metric_counter_get(&l->checksum_mismatches));
    metrics_text_counter(t, "godwit_leecher_verify_mismatched_chunks_total",
                         "Chunks --verify found differing from the frozen source (any fails the "
                         "migration).",
                         metric_counter_get(&l->verify_mismatches));
}

static const char *const verify_names[] = {"off",    "pending", "running",
                                           "passed", "failed",  "unsupported"};

/* --verify: its state and how long the last comparison took. */
static void collect_verify(struct leecher *l, struct metrics_text *t)
{
    pthread_mutex_lock(&l->lock);
    enum verify_state verify = l->verify;
    uint64_t took_us = l->verify_us;
    pthread_mutex_unlock(&l->lock);
    metrics_text_state_set(t, "godwit_leecher_verify_state",
                           "The whole-image comparison (--verify): 1 for the current state.",
                           "state", verify_names, sizeof verify_names / sizeof verify_names[0],
                           (size_t)verify - 1);
    metrics_text_gauge(t, "godwit_leecher_verify_seconds",
                       "How long the last --verify comparison took (0 before one).",
                       (double)took_us * 1e-6);
}

static void collect(void *opaque, struct metrics_text *t)
{
    struct leecher *l = opaque;
    struct locked_view v;
    pthread_mutex_lock(&l->lock);
    v = (struct locked_view){l->state,      l->downtime_us,    l->source_dirty,  l->round_trip_us,
                             l->dirty_rate, l->not_converging, l->stalled_rounds};
    pthread_mutex_unlock(&l->lock);
    const struct metric_label info[] = {{"program", "godwit-leecher"}, {"version", GODWIT_VERSION}};
    metrics_text_family(t, "godwit_build_info", METRIC_GAUGE, "Always 1; the program and version.");
    metrics_text_sample(t, "godwit_build_info", info, 2, 1);
    metrics_text_state_set(t, "godwit_leecher_state",
                           "The migration's state: 1 for the current one, 0 for the others.",
                           "state", state_names + 1, sizeof state_names / sizeof state_names[0] - 1,
                           (size_t)v.state - 1);
    collect_progress(l, v.state == COMPLETE || v.state == FAILED, t);
    collect_verify(l, t);
    metrics_text_counter(t, "godwit_leecher_sync_rounds_total", "Sync rounds the seeder answered.",
                         metric_counter_get(&l->sync_rounds));
    metrics_text_gauge(t, "godwit_leecher_source_dirty_chunks",
                       "Chunks the source says a Finalize now would transfer.",
                       v.state == PRECOPY ? (double)v.source_dirty : 0);
    metrics_text_gauge(t, "godwit_leecher_dirty_rate_chunks_per_second",
                       "Chunks the source re-dirtied per second, recent Syncs.", v.dirty_rate);
    metrics_text_gauge(t, "godwit_leecher_predicted_downtime_seconds",
                       "What a Finalize now would cost: one round trip plus the source's dirty "
                       "chunks times the pull time per chunk over the workers (NaN before the "
                       "first round trip).",
                       predicted_downtime(l, &v));
    bool precopy = v.state == PRECOPY;
    metrics_text_gauge(t, "godwit_leecher_not_converging",
                       "1 while pre-copy is not converging: the chunks the leecher lacks have not "
                       "shrunk for --converge-rounds Sync rounds in a row (0 after Finalize).",
                       precopy && v.not_converging ? 1 : 0);
    metrics_text_gauge(t, "godwit_leecher_stalled_sync_rounds",
                       "Sync rounds in a row in which the chunks the leecher lacks did not shrink.",
                       precopy ? v.stalled_rounds : 0);
    metrics_text_gauge(t, "godwit_leecher_downtime_seconds",
                       "The measured downtime of Finalize (0 before it).",
                       (double)v.downtime_us * 1e-6);
}

void leecher_metrics_init(struct leecher *l)
{
    metric_histogram_init(&l->pull_us, metric_latency_bounds_us, metric_latency_n_bounds, 1e-6);
    metric_histogram_init(&l->on_demand_us, metric_latency_bounds_us, metric_latency_n_bounds,
                          1e-6);
}

struct metrics_server *leecher_metrics_start(struct leecher *l, const char *address, int *port,
                                             char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (host_port_resolve(address, &addr, &len, err, errlen) < 0)
        return NULL;
    return metrics_server_start((struct sockaddr *)&addr, len, collect, l, port, err, errlen);
}
