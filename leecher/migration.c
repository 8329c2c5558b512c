/* SPDX-License-Identifier: MIT */
/* The migration's phases: the syncer (iterative pre-copy: Sync, re-mark,
 * record, acknowledge), Finalize (freeze the source, mark its last dirty
 * chunks, open the export), and the monitor (progress lines, --verify and
 * completion). */
#include "leecher.h"

#include "cleanup.h"
#include "log.h"
#include "pull-order.h"
#include "seeder-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PRECOPY_FLUSH_US: a pre-copy Sync round flushes the image (a save) when
 * the last flush is this old, and only records otherwise (state-file.c):
 * a crash in pre-copy then re-pulls at most the last 10 s of the pull. A
 * flush at every round (1 s) put the image's writeback inside the pull:
 * the syncer's fdatasync took 4.7% of a 1 GiB pull's CPU, and the pull
 * and the Finalize behind it took 0.98 s instead of 1.45 without it
 * (docs/benchmarks.md). The kernel writes the pages back in any case. */
enum {
    POSTCOPY_SAVE_US = 2000000,
    PRECOPY_FLUSH_US = 10000000,
    VERIFY_RETRY_US = 2000000,
    DRAIN_US = 1000000
};

static const char *state_names[] = {"", "PRECOPY", "FINALIZING", "POSTCOPY", "COMPLETE", "FAILED"};

/* Waits MS or until the state leaves PRECOPY / stopping; true to go on. */
static bool precopy_wait(struct leecher *l, int ms)
{
    uint64_t deadline = leecher_now_us() + (uint64_t)ms * 1000;
    LOCK_FOR_SCOPE(&l->lock);
    while (l->state == PRECOPY && !l->stopping && leecher_now_us() < deadline)
        leecher_wait(l, 50000);
    return l->state == PRECOPY && !l->stopping;
}

/* The pages of CHUNK that PAGES names, 0 (the whole chunk) if it names
 * none of them. */
static uint64_t chunk_pages(const struct leecher *l, uint64_t chunk, uint64_t pages)
{
    uint64_t start = chunk_offset(&l->geo, chunk);
    return pages & chunk_page_mask(&l->geo, chunk, start, chunk_length(&l->geo, chunk));
}

/* Marks the chunks at OFFSETS remote, only their PAGES (NULL: whole
 * chunks); false if the phase forbids it. A Sync's set (QUEUE false) only
 * counts in pre-copy: a reply that arrives after Finalize opened the export
 * must not take a chunk back from the destination app (its chunks come
 * again in the freeze's set). */
static bool mark_dirty(struct leecher *l, const uint64_t *offsets, const uint64_t *pages, size_t n,
                       bool queue)
{
    uint64_t redirtied = 0;
    pthread_mutex_lock(&l->lock);
    bool allowed = queue ? l->state == FINALIZING : l->state == PRECOPY;
    for (size_t i = 0; allowed && i < n; i++) {
        uint64_t chunk = chunk_index(&l->geo, offsets[i]);
        if (chunk >= l->geo.chunks)
            continue;
        redirtied +=
            chunk_map_mark_remote(l->map, chunk, pages ? chunk_pages(l, chunk, pages[i]) : 0);
        if (queue)
            pull_order_put_first(l->order, chunk);
    }
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    atomic_fetch_add(&l->chunks_redirtied, redirtied);
    return allowed;
}

/* Asks the seeder what Finalize would transfer now: the Sync set the state
 * file records is acknowledged by that Finalize, so it is not counted. */
static void refresh_source_dirty(struct leecher *l)
{
    struct rpc_result result;
    pthread_mutex_lock(&l->lock);
    uint64_t ack = l->ack_generation;
    pthread_mutex_unlock(&l->lock);
    uint64_t started = leecher_now_us();
    Godwit__V1__InfoResponse *info = seeder_client_info_acked(l->seeder, ack, &result);
    if (!info)
        return;
    uint64_t round_trip = leecher_now_us() - started;
    if (strcmp(info->image_id, l->image_id) != 0)
        leecher_fail(l,
                     "the seeder's image identity changed from %s to %s (it restarted); "
                     "refusing to mix two images",
                     l->image_id, info->image_id);
    pthread_mutex_lock(&l->lock);
    l->source_dirty = info->dirty_chunks;
    l->round_trip_us = round_trip;
    pthread_mutex_unlock(&l->lock);
    protobuf_c_message_free_unpacked(&info->base, NULL);
}

/* What Status.error says while pre-copy's Sync cannot reach the seeder. */
static const char unreachable[] = "the seeder cannot be reached";

/* Says so in Status.error (unless it holds another sentence: a failure, a
 * full disk) while Sync fails; clears it once the seeder answers again. */
static void note_reachable(struct leecher *l, bool reached, const char *why)
{
    LOCK_FOR_SCOPE(&l->lock);
    bool ours = strncmp(l->error, unreachable, sizeof unreachable - 1) == 0;
    if (l->state == FAILED || (l->error[0] && !ours))
        return;
    if (reached)
        l->error[0] = 0;
    else /* the gRPC detail cut to what fits the sentence */
        snprintf(l->error, sizeof l->error, "%s (Sync failed: %.180s); retrying", unreachable, why);
}

/* One Sync round: 1 when the seeder answered (*MARKED: the chunks its
 * set named), 0 when it could not be reached (retry), -1 when pre-copy
 * is over (failed, or Finalize began). FLUSH: the state file's save
 * flushes the image (a periodic round every PRECOPY_FLUSH_US), or only
 * records what the last flush covered (the other periodic rounds, and
 * Finalize's, which must not wait for writeback). */
static int sync_once(struct leecher *l, uint64_t *last_us, uint64_t *marked, bool flush)
{
    pthread_mutex_lock(&l->lock);
    uint64_t ack = l->ack_generation;
    pthread_mutex_unlock(&l->lock);
    struct rpc_result result;
    Godwit__V1__SyncResponse *sync = seeder_client_sync(l->seeder, l->image_id, ack, &result);
    grpc_status_code status = result.status;
    if (status == GRPC_STATUS_FAILED_PRECONDITION) {
        refresh_source_dirty(l); /* tells an identity change apart */
        pthread_mutex_lock(&l->lock);
        bool precopy = l->state == PRECOPY;
        pthread_mutex_unlock(&l->lock);
        if (precopy)
            leecher_fail(l, "Sync refused: %s", result.message);
        return -1;
    }
    if (status != GRPC_STATUS_OK) {
        log_warn(l->log, "Sync failed (%s); retrying", result.message);
        note_reachable(l, false, result.message);
        return 0;
    }
    note_reachable(l, true, NULL);
    /* Page masks only if there is one per chunk (a seeder from before them
     * sends none): else whole chunks. */
    const uint64_t *pages = sync->n_dirty_pages == sync->n_dirty_offsets ? sync->dirty_pages : NULL;
    if (!mark_dirty(l, sync->dirty_offsets, pages, sync->n_dirty_offsets, false)) {
        /* Finalize began meanwhile: left unacknowledged, the set comes
         * back in the freeze's answer. */
        protobuf_c_message_free_unpacked(&sync->base, NULL);
        return -1;
    }
    metric_counter_add(&l->sync_rounds, 1);
    *marked = sync->n_dirty_offsets;
    uint64_t now = leecher_now_us();
    double seconds = (double)(now - *last_us) / 1e6;
    *last_us = now;
    /* Finalize's round with an empty set acknowledges it without a record:
     * a restart that finds the older record loses nothing (the seeder keeps
     * an unacknowledged set, and this one names no chunk), and the call
     * does not wait for an fsync (1 ms, but 112 ms in 1 of 6 sparse runs
     * here, behind other writeback). */
    bool record = flush || sync->n_dirty_offsets > 0;
    if (!record || (flush ? state_file_save(l) : state_file_record(l)) == 0) {
        pthread_mutex_lock(&l->lock);
        l->ack_generation = sync->generation;
        if (seconds >= 0.1) /* the Sync at Finalize comes at any moment: no rate from it */
            l->dirty_rate = 0.5 * l->dirty_rate + 0.5 * (double)sync->n_dirty_offsets / seconds;
        pthread_mutex_unlock(&l->lock);
    } else {
        log_warn(l->log, "cannot write %s: %s", l->state_path, strerror(errno));
    }
    protobuf_c_message_free_unpacked(&sync->base, NULL);
    refresh_source_dirty(l);
    return 1;
}

double leecher_predict_downtime_ms(const struct leecher *l, uint64_t source_dirty,
                                   uint64_t round_trip_us)
{
    double per_chunk_ms = (double)atomic_load(&l->chunk_pull_ns) / 1e6;
    uint64_t parallel = l->n_workers < source_dirty ? l->n_workers : source_dirty;
    double pull_ms = parallel ? (double)source_dirty * per_chunk_ms / (double)parallel : 0;
    return (double)round_trip_us / 1000 + pull_ms;
}

/* The prediction from the last Sync round's figures; -1 before a round
 * trip was measured. */
static double current_prediction_ms(struct leecher *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t dirty = l->source_dirty, round_trip = l->round_trip_us;
    pthread_mutex_unlock(&l->lock);
    return round_trip ? leecher_predict_downtime_ms(l, dirty, round_trip) : -1;
}

static int run_finalize(struct leecher *l, bool automatic, char *err, size_t errlen);

/* --auto-finalize-ms: Finalize from the syncer (no lock held), retried while
 * the seeder cannot be reached. */
static void auto_finalize(struct leecher *l, double predicted)
{
    log_info(l->log, "predicted downtime %.2f ms <= %d ms for two Syncs: finalizing", predicted,
             l->auto_finalize_ms);
    pthread_mutex_lock(&l->lock);
    l->finalize_predicted_ms = predicted; /* the figure the decision was made on */
    pthread_mutex_unlock(&l->lock);
    char err[256];
    while (run_finalize(l, true, err, sizeof err) < 0 && errno == EAGAIN) {
        pthread_mutex_lock(&l->lock);
        bool stopping = l->stopping;
        if (!stopping)
            leecher_wait(l, (uint64_t)l->sync_interval_ms * 1000);
        pthread_mutex_unlock(&l->lock);
        if (stopping)
            return;
    }
}

void *syncer_thread(void *arg)
{
    struct leecher *l = arg;
    if (l->session_unrecorded && state_file_record(l) < 0) /* startup.c: track_session */
        log_warn(l->log, "cannot write %s: %s", l->state_path, strerror(errno));
    uint64_t last = leecher_now_us();
    unsigned rounds_under = 0; /* Sync rounds in a row at or under the target */
    struct convergence convergence;
    convergence_init(&convergence);
    uint64_t marked = 0, flushed = last; /* when a round last flushed the image */
    while (precopy_wait(l, l->sync_interval_ms)) {
        bool flush = leecher_now_us() - flushed >= PRECOPY_FLUSH_US;
        int answered = sync_once(l, &last, &marked, flush);
        if (answered < 0)
            break;
        if (answered && flush)
            flushed = last;
        if (answered)
            convergence_note_round(l, &convergence, marked);
        if (!answered || !l->auto_finalize_ms)
            continue;
        double predicted = current_prediction_ms(l);
        bool under = predicted >= 0 && predicted <= l->auto_finalize_ms;
        rounds_under = under ? rounds_under + 1 : 0;
        if (rounds_under >= 2) {
            auto_finalize(l, predicted);
            break;
        }
    }
    return NULL;
}

/* Calls Seeder.Finalize; returns the response or NULL with ERR. */
static Godwit__V1__FinalizeResponse *freeze_source(struct leecher *l, char *err, size_t errlen)
{
    pthread_mutex_lock(&l->lock);
    uint64_t ack = l->ack_generation; /* recorded: need not come back */
    pthread_mutex_unlock(&l->lock);
    struct rpc_result result;
    Godwit__V1__FinalizeResponse *response =
        seeder_client_finalize(l->seeder, l->image_id, ack, &result);
    if (!response) {
        snprintf(err, errlen,
                 "Seeder.Finalize failed: %s; if the seeder froze the source it stays frozen: "
                 "retry Finalize",
                 result.message);
        return NULL;
    }
    return response;
}

/* Enters FINALIZING; 1 if already finalized, -1 if not allowed, 0 to go. */
static int begin_finalize(struct leecher *l, char *err, size_t errlen)
{
    LOCK_FOR_SCOPE(&l->lock);
    pthread_cond_broadcast(&l->changed); /* the waiters see the state once we unlock */
    if (l->state == POSTCOPY || l->state == COMPLETE)
        return 1;
    if (l->state == FAILED) {
        snprintf(err, errlen, "the migration has failed: %s", l->error);
        return -1;
    }
    l->state = FINALIZING;
    return 0;
}

/* Stops background pulls from starting and waits, at most DRAIN_US, for
 * those in flight: the freeze's request and reply then cross a link with
 * no ReadAt replies queued in front of them. The source still runs, so
 * this is not part of the downtime; it lasts about one bulk budget's worth
 * of the link (a few milliseconds). */
static void pause_bulk(struct leecher *l)
{
    pthread_mutex_lock(&l->lock);
    l->bulk_paused = true;
    pthread_mutex_unlock(&l->lock);
    if (!bulk_budget_drain(&l->budget, DRAIN_US))
        log_warn(l->log, "background pulls still in flight after %d ms: finalizing anyway",
                 DRAIN_US / 1000);
}

/* Background pulls go on after a Finalize that failed. */
static void resume_bulk(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->lock);
    l->bulk_paused = false;
    pthread_cond_broadcast(&l->changed);
}

/* Freezes the source and opens the export (FINALIZING, bulk paused);
 * background pulls resume once it is open. */
static int freeze_and_open(struct leecher *l, bool automatic, char *err, size_t errlen)
{
    pthread_mutex_lock(&l->lock);
    if (!l->freeze_started_us) { /* a retry: the source has been paused since the first */
        l->freeze_started_us = leecher_now_us();
        if (!automatic) /* an automatic one keeps the figure it decided on */
            l->finalize_predicted_ms =
                leecher_predict_downtime_ms(l, l->source_dirty, l->round_trip_us);
    }
    uint64_t start = l->freeze_started_us;
    double predicted = l->finalize_predicted_ms;
    pthread_mutex_unlock(&l->lock);
    log_event(l->log, "finalizing", NULL);
    Godwit__V1__FinalizeResponse *response = freeze_source(l, err, errlen);
    if (!response) {
        log_warn(l->log, "%s", err);
        errno = EAGAIN;
        return -1;
    }
    note_reachable(l, true, NULL); /* a Sync that failed just before is history */
    mark_dirty(l, response->dirty_offsets, NULL, response->n_dirty_offsets, true);
    pthread_mutex_lock(&l->lock);
    l->gate_open = true;
    l->state = POSTCOPY;
    l->bulk_paused = false; /* the freeze's dirty chunks go first */
    l->finalize_recording = true;
    /* From the freeze to the open gate: the seeder's flush before its
     * freeze ran while the source app still wrote, so it is not downtime. */
    uint64_t elapsed = leecher_now_us() - start;
    l->downtime_us =
        elapsed > response->before_freeze_us ? elapsed - response->before_freeze_us : 0;
    l->finalize_dirty = response->n_dirty_offsets;
    uint64_t downtime = l->downtime_us;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    log_event(l->log, "finalized",
              json_pack("{s:I,s:f,s:b,s:I}", "downtime_us", (json_int_t)downtime,
                        "predicted_downtime_ms", predicted, "auto", automatic, "dirty_chunks",
                        (json_int_t)response->n_dirty_offsets));
    protobuf_c_message_free_unpacked(&response->base, NULL);
    if (state_file_record(l) < 0)
        log_warn(l->log, "cannot write %s: %s", l->state_path, strerror(errno));
    /* Only now may the monitor declare COMPLETE: its flush holds the state
     * file's lock for the writeback of everything pulled (65-146 ms for
     * 205 MiB here), and this record, and so the Finalize call, would wait
     * behind it. */
    LOCK_FOR_SCOPE(&l->lock);
    l->finalize_recording = false;
    pthread_cond_broadcast(&l->changed);
    return 0;
}

/* Finalize, with finalize_lock held; AUTOMATIC: --auto-finalize-ms. */
static int finalize_locked(struct leecher *l, bool automatic, char *err, size_t errlen)
{
    /* One last Sync while the source still runs: it takes what was
     * rewritten since the previous one, so the freeze below has less to
     * transfer. Not part of the downtime. Neither it nor the record after
     * the freeze flushes the local image: chunks pulled since the last
     * flush are recorded as remote until the flush at COMPLETE (or the
     * next periodic save), so Finalize never waits for writeback. */
    pthread_mutex_lock(&l->lock);
    bool precopy = l->state == PRECOPY;
    pthread_mutex_unlock(&l->lock);
    uint64_t last = leecher_now_us() - 1, marked;
    if (precopy && l->final_sync)
        sync_once(l, &last, &marked, false);
    int begun = begin_finalize(l, err, errlen);
    if (begun != 0) {
        errno = EBUSY; /* the migration failed: Finalize cannot run */
        return begun > 0 ? 0 : -1;
    }
    pause_bulk(l);
    int r = freeze_and_open(l, automatic, err, errlen);

    if (r < 0)
        resume_bulk(l);
    return r;
}

static int run_finalize(struct leecher *l, bool automatic, char *err, size_t errlen)
{
    LOCK_FOR_SCOPE(&l->finalize_lock); /* one Finalize at a time */
    return finalize_locked(l, automatic, err, errlen);
}

int leecher_finalize(struct leecher *l, char *err, size_t errlen)
{
    return run_finalize(l, false, err, errlen);
}

/* Tells the seeder it may exit; retried a few times, fatal only when the
 * seeder refuses it (FAILED_PRECONDITION: the migration was aborted, so
 * this copy was abandoned and must not pass for a completed one). */
static void tell_complete(struct leecher *l)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        struct rpc_result result;
        grpc_status_code status = seeder_client_complete(l->seeder, &result);
        if (status == GRPC_STATUS_OK)
            return;
        if (status == GRPC_STATUS_FAILED_PRECONDITION) {
            leecher_fail(l, "the seeder refused Complete (was the migration aborted?): %s",
                         result.message);
            return;
        }
        log_warn(l->log, "Seeder.Complete failed: %s", result.message);
    }
}

/* The flush at COMPLETE (the first since Finalize, which only recorded):
 * every chunk on disk and recorded before the seeder is told it may go;
 * retried every second. False if the leecher stops first. */
static bool save_complete(struct leecher *l)
{
    while (state_file_save(l) < 0) {
        log_warn(l->log, "cannot write %s: %s; Seeder.Complete waits until it is written",
                 l->state_path, strerror(errno));
        LOCK_FOR_SCOPE(&l->lock);
        if (l->stopping)
            return false;
        leecher_wait(l, 1000000);
    }
    return true;
}

/* What the monitor saw, under the lock, for one report. */
struct snapshot {
    enum leecher_state state;
    double dirty_rate;
    uint64_t source_dirty;
    uint64_t round_trip_us;
};

static json_t *progress_fields(struct leecher *l, double rate, const struct snapshot *s)
{
    uint64_t total = l->geo.chunks, local = chunk_map_local(l->map);
    double predicted = leecher_predict_downtime_ms(l, s->source_dirty, s->round_trip_us);
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:f}", "state",
                     state_names[s->state], "chunks_total", (json_int_t)total, "chunks_local",
                     (json_int_t)local, "chunks_remaining", (json_int_t)(total - local),
                     "chunks_redirtied", (json_int_t)atomic_load(&l->chunks_redirtied),
                     "pulled_once", (json_int_t)chunk_map_ever_local(l->map), "bytes_pulled",
                     (json_int_t)atomic_load(&l->bytes_pulled), "bytes_decoded",
                     (json_int_t)atomic_load(&l->bytes_decoded), "mb_per_s", rate / 1e6,
                     "dirty_rate", s->dirty_rate, "finalize_dirty_chunks",
                     (json_int_t)s->source_dirty, "predicted_downtime_ms", predicted);
}

/* One progress line: first-pass percentage (never goes back), MB/s, ETA. */
static void report_progress(struct leecher *l, double rate, const struct snapshot *s)
{
    uint64_t total = l->geo.chunks, local = chunk_map_local(l->map);
    uint64_t once = chunk_map_ever_local(l->map);
    double percent = total ? 100.0 * (double)(once < total ? once : total) / (double)total : 100;
    double remaining_bytes = (double)(total - local) * l->geo.chunk_size;
    char text[256];
    snprintf(text, sizeof text,
             "%s %5.1f%%  %7.1f MB/s  remaining %llu  re-dirtied %llu (%.0f/s)  "
             "Finalize now: %llu chunks  ETA %.0f s",
             state_names[s->state], percent, rate / 1e6, (unsigned long long)(total - local),
             (unsigned long long)atomic_load(&l->chunks_redirtied), s->dirty_rate,
             (unsigned long long)s->source_dirty, rate > 0 ? remaining_bytes / rate : 0.0);
    log_progress(l->log, text, progress_fields(l, rate, s));
}

/* Whether --verify lets a migration whose chunks are all local complete. */
static bool verify_allows_complete(enum verify_state v)
{
    return v == VERIFY_OFF || v == VERIFY_PASSED || v == VERIFY_UNSUPPORTED;
}

/* Whether the monitor has something to do at once (with l->lock held):
 * stop, or the post-copy is over and COMPLETE (or --verify, due at
 * VERIFY_AT) waits. Checked before it sleeps: the broadcast that made it
 * so may have come while the monitor was busy, and it would otherwise
 * sleep its whole 100 ms tick first. */
static bool monitor_due(struct leecher *l, uint64_t verify_at)
{
    if (l->stopping)
        return true;
    if (l->state != POSTCOPY || l->finalize_recording || chunk_map_local(l->map) != l->geo.chunks)
        return false;
    return verify_allows_complete(l->verify) ||
           (l->verify == VERIFY_PENDING && leecher_now_us() >= verify_at);
}

void *monitor_thread(void *arg)
{
    struct leecher *l = arg;
    uint64_t last_us = leecher_now_us(), last_bytes = 0, last_report = 0, last_save = last_us;
    uint64_t verify_at = 0; /* --verify: not before (a retry after the seeder failed it) */
    double rate = 0;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        if (!monitor_due(l, verify_at))
            leecher_wait(l, 100000);
        bool all_local = l->state == POSTCOPY && !l->finalize_recording &&
                         chunk_map_local(l->map) == l->geo.chunks;
        bool stopping = l->stopping,
             verify_now = all_local && !stopping && l->verify == VERIFY_PENDING &&
                          leecher_now_us() >= verify_at,
             complete = all_local && verify_allows_complete(l->verify);
        if (complete)
            l->state = COMPLETE;
        struct snapshot snap = {l->state, l->dirty_rate, l->source_dirty, l->round_trip_us};
        enum leecher_state state = l->state;
        pthread_mutex_unlock(&l->lock);
        if (verify_now) { /* before COMPLETE; the export keeps serving meanwhile */
            leecher_verify(l);
            verify_at = leecher_now_us() + VERIFY_RETRY_US;
            continue;
        }
        uint64_t now = leecher_now_us(), bytes = atomic_load(&l->bytes_pulled);
        if (now - last_us >= 1000000 || complete) {
            rate = (double)(bytes - last_bytes) / ((double)(now - last_us) / 1e6);
            metric_gauge_set(&l->pull_throughput, rate);
            last_us = now, last_bytes = bytes;
        }
        if (state == COMPLETE && !complete)
            return NULL; /* resumed complete: nothing to watch */
        storage_check(l);
        if (state == POSTCOPY && now - last_save >= POSTCOPY_SAVE_US) {
            /* A restart then re-pulls at most this long's worth. */
            if (state_file_save(l) < 0)
                log_warn(l->log, "cannot write %s: %s", l->state_path, strerror(errno));
            last_save = now;
        }
        if (complete && save_complete(l)) {
            log_event(l->log, "complete", progress_fields(l, rate, &snap));
            tell_complete(l);
        } else if (now - last_report >= 1000000 && state != FAILED) {
            report_progress(l, rate, &snap);
            last_report = now;
        }
        if (stopping || complete || state == FAILED)
            return NULL;
    }
}
