/* SPDX-License-Identifier: MIT */
/* Convergence: does pre-copy catch up with the source? After each Sync
 * round the syncer counts the chunks the leecher lacks (what would still
 * have to cross the wire after a Finalize now). A round makes progress
 * when that count falls below its best so far, or when it is no more than
 * the last two rounds' Sync sets (pre-copy lags the source by at most its
 * latest writes: as caught up as a running source allows). After
 * --converge-rounds rounds in a row without progress the migration is
 * not converging: a not_converging event with the figures and what would
 * help, Status.not_converging and the godwit_leecher_not_converging gauge.
 * The next round with progress clears it with a converging event. */
#include "leecher.h"

#include "log.h"

#include <stdio.h>

void convergence_init(struct convergence *c)
{
    *c = (struct convergence){.best = UINT64_MAX};
}

/* The figures of one verdict, read under the lock. */
struct convergence_view {
    unsigned rounds;
    uint64_t lacking, best, source_dirty;
    double dirty_mb_per_s, pull_mb_per_s, predicted_ms; /* predicted_ms < 0: unknown */
};

/* One sentence on what would help, from the rates and the prediction. */
static void write_hint(char *hint, size_t len, const struct convergence_view *v,
                       int sync_interval_ms)
{
    char pause[64] = "";
    if (v->predicted_ms >= 0)
        snprintf(pause, sizeof pause, ", a pause of about %.0f ms", v->predicted_ms);
    if (v->dirty_mb_per_s >= v->pull_mb_per_s)
        snprintf(hint, len,
                 "the source dirties %.1f MB/s and the link pulls %.1f MB/s: pre-copy cannot "
                 "catch up; finalize now (post-copy pulls the rest%s with --freeze hold) or give "
                 "the link more than %.1f MB/s",
                 v->dirty_mb_per_s, v->pull_mb_per_s, pause, v->dirty_mb_per_s);
    else
        snprintf(hint, len,
                 "the source rewrites %.1f MB/s of what pre-copy pulls (%.1f MB/s): a --sync-"
                 "interval longer than %d ms re-pulls a rewritten chunk less often, or finalize "
                 "now%s with --freeze hold",
                 v->dirty_mb_per_s, v->pull_mb_per_s, sync_interval_ms, pause);
}

static void log_not_converging(struct leecher *l, const struct convergence_view *v,
                               const char *hint)
{
    log_event(l->log, "not_converging",
              json_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:s}", "rounds", (json_int_t)v->rounds,
                        "dirty_chunks", (json_int_t)v->lacking, "best_dirty_chunks",
                        (json_int_t)v->best, "finalize_dirty_chunks", (json_int_t)v->source_dirty,
                        "dirty_mb_per_s", v->dirty_mb_per_s, "pull_mb_per_s", v->pull_mb_per_s,
                        "predicted_downtime_ms", v->predicted_ms, "hint", hint));
}

static void log_converging(struct leecher *l, const struct convergence_view *v)
{
    log_event(l->log, "converging",
              json_pack("{s:I,s:I,s:I}", "stalled_rounds", (json_int_t)v->rounds, "dirty_chunks",
                        (json_int_t)v->lacking, "best_dirty_chunks", (json_int_t)v->best));
}

void convergence_note_round(struct leecher *l, struct convergence *c, uint64_t sync_set)
{
    uint64_t local = chunk_map_local(l->map);
    uint64_t lacking = local < l->geo.chunks ? l->geo.chunks - local : 0;
    bool progress = lacking < c->best || lacking <= sync_set + c->previous_set;
    struct convergence_view v = {.lacking = lacking, .best = c->best};
    c->previous_set = sync_set;
    if (progress)
        c->best = lacking;
    double pull_bytes = metric_gauge_get(&l->pull_throughput);
    char hint[sizeof l->convergence_hint];

    pthread_mutex_lock(&l->lock);
    bool was = l->not_converging;
    unsigned stalled_before = l->stalled_rounds;
    l->stalled_rounds = progress ? 0 : stalled_before + 1;
    v.rounds = progress ? stalled_before : l->stalled_rounds; /* for the event */
    bool now = !progress && l->stalled_rounds >= l->converge_rounds;
    v.source_dirty = l->source_dirty;
    v.dirty_mb_per_s = l->dirty_rate * l->geo.chunk_size / 1e6;
    v.pull_mb_per_s = pull_bytes / 1e6;
    v.predicted_ms =
        l->round_trip_us ? leecher_predict_downtime_ms(l, l->source_dirty, l->round_trip_us) : -1;
    write_hint(hint, sizeof hint, &v, l->sync_interval_ms);
    l->not_converging = now;
    snprintf(l->convergence_hint, sizeof l->convergence_hint, "%s", now ? hint : "");
    pthread_mutex_unlock(&l->lock);

    if (now && !was)
        log_not_converging(l, &v, hint);
    else if (was && !now)
        log_converging(l, &v);
}
