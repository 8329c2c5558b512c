/* SPDX-License-Identifier: MIT */
/* The seeder's /metrics: what docs/metrics.md lists under "seeder", read at
 * scrape time from the tracker and the ReadAt statistics. */
#include "seeder.h"

#include "host-port.h"

#include <stdio.h>

static const char *const state_names[] = {
    [TRACKER_SERVING] = "serving",
    [TRACKER_TRACKING] = "tracking",
    [TRACKER_FROZEN] = "frozen",
    [TRACKER_COMPLETE] = "complete",
};

static void collect(void *opaque, struct metrics_text *t)
{
    struct seeder *seeder = opaque;
    struct tracker_stats stats;
    tracker_stats(seeder->tracker, 0, 0, &stats); /* dirty chunks: the default session */
    const struct metric_label info[] = {{"program", "godwit-seeder"}, {"version", GODWIT_VERSION}};
    metrics_text_family(t, "godwit_build_info", METRIC_GAUGE, "Always 1; the program and version.");
    metrics_text_sample(t, "godwit_build_info", info, 2, 1);
    metrics_text_state_set(
        t, "godwit_seeder_state", "The seeder's state: 1 for the current one, 0 for the others.",
        "state", state_names, sizeof state_names / sizeof state_names[0], (size_t)stats.state);
    metrics_text_gauge(t, "godwit_seeder_image_size_bytes", "Size of the served image.",
                       (double)seeder->image.size);
    metrics_text_gauge(t, "godwit_seeder_chunk_size_bytes", "Dirty-tracking granularity.",
                       (double)seeder->geo.chunk_size);
    metrics_text_counter(t, "godwit_seeder_served_bytes_total",
                         "Image bytes sent in ReadAt replies.",
                         metric_counter_get(&seeder->served_bytes));
    metrics_text_counter(t, "godwit_seeder_sent_data_bytes_total",
                         "Bytes of those ReadAt replies' data fields as sent: without the zero "
                         "ranges, and compressed where the leecher asked and it shrank.",
                         metric_counter_get(&seeder->sent_data_bytes));
    metrics_text_counter(t, "godwit_seeder_read_at_requests_total",
                         "ReadAt calls handled, failed ones included.",
                         metric_histogram_count(&seeder->read_at_us));
    metrics_text_histogram(t, "godwit_seeder_read_at_duration_seconds",
                           "Time to serve one ReadAt call (validation, read, reply queued).",
                           &seeder->read_at_us);
    metrics_text_gauge(t, "godwit_seeder_dirty_chunks", "Chunks Sync or Finalize would report now.",
                       (double)stats.dirty_chunks);
    metrics_text_gauge(t, "godwit_seeder_dirty_rate_chunks_per_second",
                       "Chunks newly dirtied per second, recent average.", stats.dirty_rate);
    metrics_text_gauge(t, "godwit_seeder_sessions", "Leecher sessions open.",
                       (double)stats.sessions);
    metrics_text_gauge(t, "godwit_seeder_freeze_held_writes",
                       "Source writes the freeze is holding now (--freeze hold).",
                       (double)stats.gate.held_now);
    metrics_text_gauge(t, "godwit_seeder_freeze_held_bytes",
                       "Payload of the source writes the freeze is holding now.",
                       (double)stats.gate.held_bytes_now);
    metrics_text_counter(t, "godwit_seeder_freeze_held_writes_total",
                         "Source writes ever held by a freeze (then applied by Abort or failed).",
                         stats.gate.held_total);
    metrics_text_counter(t, "godwit_seeder_freeze_refused_writes_total",
                         "Source writes refused while frozen (--freeze fail, the hold cap, after "
                         "Complete).",
                         stats.gate.refused_total);
}

struct metrics_server *seeder_metrics_start(struct seeder *seeder, const char *address, int *port,
                                            char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (host_port_resolve(address, &addr, &len, err, errlen) < 0)
        return NULL;
    return metrics_server_start((struct sockaddr *)&addr, len, collect, seeder, port, err, errlen);
}
