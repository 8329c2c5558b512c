/* SPDX-License-Identifier: MIT */
/* Migration state of the source side. Writes pass the write gate (shared)
 * and mark their chunks in every session's atomic dirty set after they
 * land; Sync swaps a session's set out word by word; the first Finalize
 * closes the gate, which waits for writes in flight, so none lands after
 * the freeze, and holds (or refuses) the later ones. From the freeze on,
 * every change is written to the state file before it is answered. */
#include "tracker.h"

#include "cleanup.h"
#include "daemon.h"
#include "dirty-set.h"
#include "image-file.h"
#include "log.h"
#include "state-file.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A seeding's identity. Abort draws a new one; the old ones stay allocated
 * (one per Abort) so that a reader never sees a freed string. */
struct identity {
    struct identity *older;
    char hex[33];
};

/* Lock order: sync_lock, then the gate (rw, then its lock). */
struct tracker {
    struct tracker_config config; /* read-only; state_path is our own copy */
    struct write_gate gate;
    _Atomic int state;                   /* enum tracker_state; changed under sync_lock */
    _Atomic bool unflushed;              /* set by each write, cleared by tracker_flush */
    _Atomic uint64_t dirtied_total;      /* chunks newly marked, ever (for the rate) */
    _Atomic(struct identity *) identity; /* replaced under sync_lock */

    /* The sessions: changed under sync_lock and gate_lock_all both, so a
     * write (inside the gate) or a holder of sync_lock may read them. */
    struct session **sessions; /* room for capacity */
    size_t n_sessions, capacity;

    /* Everything below is owned by sync_lock. */
    pthread_mutex_t sync_lock;
    uint64_t next_session;    /* the id of the next session opened */
    uint64_t default_session; /* the session of requests without an id; 0: none yet */
    double rate;              /* last computed dirty rate */
    uint64_t rate_total;      /* dirtied_total at rate_time */
    struct timespec rate_time;
};

static int new_identity(struct tracker *tracker, const char *hex)
{
    struct identity *id = calloc(1, sizeof *id);
    if (!id)
        return -1;
    if (hex)
        snprintf(id->hex, sizeof id->hex, "%s", hex);
    else if (daemon_random_id(id->hex, 16) < 0) {
        free(id);
        return -1;
    }
    id->older = atomic_load(&tracker->identity);
    atomic_store(&tracker->identity, id);
    return 0;
}

void tracker_image_id(struct tracker *tracker, char id[33])
{
    memcpy(id, atomic_load(&tracker->identity)->hex, 33);
}

/* Takes the sessions and identity of a restored STATE. */
static int adopt(struct tracker *tracker, struct seeder_state *state)
{
    size_t capacity = tracker->capacity > state->n_sessions ? tracker->capacity : state->n_sessions;
    struct session **room = realloc(state->sessions, (capacity ? capacity : 1) * sizeof *room);
    if (!room || new_identity(tracker, state->image_id) < 0) {
        room = room ? room : state->sessions;
        for (size_t i = 0; i < state->n_sessions; i++)
            session_free(room[i]);
        free(room);
        return -1;
    }
    free(tracker->sessions); /* the empty array tracker_new made */
    tracker->sessions = room, tracker->capacity = capacity;
    tracker->n_sessions = state->n_sessions;
    tracker->next_session = state->next_session;
    tracker->default_session = state->default_session;
    atomic_store(&tracker->state, state->phase);
    bool refuse = state->phase == TRACKER_COMPLETE || tracker->config.freeze == FREEZE_FAIL;
    gate_set_mode(&tracker->gate, refuse ? GATE_REFUSE : GATE_HOLD);
    return 0;
}

/* Restores the state file if there is one, else draws a new identity. */
static int start_state(struct tracker *tracker, char *err, size_t errlen)
{
    struct seeder_state state;
    const char *path = tracker->config.state_path;
    int r = path ? state_file_load(path, &tracker->config.geo, &state, err, errlen) : 0;
    if (r < 0)
        return -1;
    if (r == 1 && adopt(tracker, &state) < 0) {
        snprintf(err, errlen, "cannot restore %s: %s", path, strerror(ENOMEM));
        return -1;
    }
    if (r == 0 && new_identity(tracker, NULL) < 0) {
        snprintf(err, errlen, "cannot draw an image id: %s", strerror(errno));
        return -1;
    }
    return 0;
}

struct tracker *tracker_new(const struct tracker_config *config, char *err, size_t errlen)
{
    struct tracker *tracker = calloc(1, sizeof *tracker);
    if (!tracker) {
        snprintf(err, errlen, "cannot set up the tracker: %s", strerror(ENOMEM));
        return NULL;
    }
    tracker->config = *config;
    tracker->config.state_path = NULL;
    tracker->capacity = config->max_sessions;
    tracker->sessions =
        calloc(config->max_sessions ? config->max_sessions : 1, sizeof *tracker->sessions);
    tracker->next_session = 1;
    atomic_init(&tracker->state, TRACKER_SERVING);
    atomic_init(&tracker->unflushed, true); /* the file may hold writes from before we started */
    atomic_init(&tracker->identity, NULL);
    pthread_mutex_init(&tracker->sync_lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &tracker->rate_time);
    char *path = config->state_path ? strdup(config->state_path) : NULL;
    if (!tracker->sessions || (config->state_path && !path) ||
        gate_init(&tracker->gate, &config->limits, config->log) < 0) {
        free(path);
        snprintf(err, errlen, "cannot set up the tracker: %s", strerror(errno ? errno : ENOMEM));
        free(tracker->sessions);
        pthread_mutex_destroy(&tracker->sync_lock);
        free(tracker);
        return NULL;
    }
    tracker->config.state_path = path;
    if (start_state(tracker, err, errlen) < 0) {
        tracker_free(tracker);
        return NULL;
    }
    return tracker;
}

void tracker_free(struct tracker *tracker)
{
    if (!tracker)
        return;
    for (size_t i = 0; i < tracker->n_sessions; i++)
        session_free(tracker->sessions[i]);
    free(tracker->sessions);
    for (struct identity *id = atomic_load(&tracker->identity), *older; id; id = older) {
        older = id->older;
        free(id);
    }
    gate_destroy(&tracker->gate);
    pthread_mutex_destroy(&tracker->sync_lock);
    free((char *)tracker->config.state_path);
    free(tracker);
}

int tracker_begin_write(struct tracker *tracker, uint64_t count, struct gate_pass *pass)
{
    return gate_enter(&tracker->gate, count, pass);
}

void tracker_end_write(struct tracker *tracker, const struct gate_pass *pass, uint64_t offset,
                       uint64_t count)
{
    /* Mark after the data landed: a Sync between the write and the mark
     * reports the chunk next time; marking first could lose it. */
    if (count > 0 && tracker->n_sessions > 0) {
        uint64_t first, last, fresh = 0;
        chunk_span(&tracker->config.geo, offset, count, &first, &last);
        const struct chunk_geometry *geo = &tracker->config.geo;
        uint64_t first_pages = chunk_page_mask(geo, first, offset, count);
        uint64_t last_pages = chunk_page_mask(geo, last, offset, count);
        for (size_t i = 0; i < tracker->n_sessions; i++) {
            uint64_t n = dirty_set_mark_pages(tracker->sessions[i]->dirty, first, last, first_pages,
                                              last_pages);
            fresh = n > fresh ? n : fresh;
        }
        atomic_fetch_add(&tracker->dirtied_total, fresh);
    }
    atomic_store(&tracker->unflushed, true); /* even a failed write may have landed in part */
    gate_leave(&tracker->gate, pass);
}

int tracker_flush(struct tracker *tracker, const struct image_file *image)
{
    /* A clean image costs nothing to flush here: fdatasync of a large clean
     * file still walks its page cache, which made Finalize's fixed cost grow
     * with the image size. A write that lands after the exchange sets the
     * flag again, so the next flush covers it. */
    if (!atomic_exchange(&tracker->unflushed, false))
        return 0;
    if (image_flush(image) == 0)
        return 0;
    atomic_store(&tracker->unflushed, true);
    return -1;
}

/* Writes the state file if the freeze happened; -1 (EIO) if that failed.
 * Caller holds sync_lock. */
static int persist(struct tracker *tracker)
{
    const char *path = tracker->config.state_path;
    if (!path || atomic_load(&tracker->state) < TRACKER_FROZEN)
        return 0;
    struct seeder_state state = {
        .phase = atomic_load(&tracker->state),
        .next_session = tracker->next_session,
        .default_session = tracker->default_session,
        .sessions = tracker->sessions,
        .n_sessions = tracker->n_sessions,
    };
    tracker_image_id(tracker, state.image_id);
    if (state_file_save(path, &tracker->config.geo, &state) == 0)
        return 0;
    log_error(tracker->config.log, "cannot write the seeder state file %s: %s", path,
              strerror(errno));
    errno = EIO;
    return -1;
}

/* The session named ID (0: the default one); NULL with errno ESTALE.
 * Caller holds sync_lock. */
static struct session *find_session(struct tracker *tracker, uint64_t id)
{
    if (id == 0)
        id = tracker->default_session;
    for (size_t i = 0; id && i < tracker->n_sessions; i++)
        if (tracker->sessions[i]->id == id)
            return tracker->sessions[i];
    errno = ESTALE;
    return NULL;
}

/* Opens a session; caller holds sync_lock. */
static struct session *open_session(struct tracker *tracker)
{
    if (atomic_load(&tracker->state) == TRACKER_COMPLETE) {
        errno = EBUSY;
        return NULL;
    }
    if (tracker->n_sessions >= tracker->capacity) {
        errno = EUSERS;
        return NULL;
    }
    struct session *session = session_new(tracker->next_session, tracker->config.geo.chunks);
    if (!session)
        return NULL;
    tracker->next_session++;
    /* Writes in flight end first: the new set starts between two writes. */
    gate_lock_all(&tracker->gate);
    tracker->sessions[tracker->n_sessions++] = session;
    if (atomic_load(&tracker->state) == TRACKER_SERVING)
        atomic_store(&tracker->state, TRACKER_TRACKING);
    gate_unlock_all(&tracker->gate);
    return session;
}

int tracker_track(struct tracker *tracker, const struct track_request *request,
                  struct track_result *result)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    struct session *session = NULL;
    if (request->session_id || !request->new_session)
        session = find_session(tracker, request->session_id);
    if (!session && request->session_id)
        return -1; /* ESTALE: a session this seeder does not know */
    result->already_tracking = session != NULL;
    if (!session && !(session = open_session(tracker)))
        return -1;
    if (!request->new_session && !request->session_id)
        tracker->default_session = session->id;
    result->session_id = session->id;
    return result->already_tracking ? 0 : persist(tracker);
}

int tracker_sync(struct tracker *tracker, uint64_t id, uint64_t ack_generation,
                 struct dirty_list *out)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    struct session *session = find_session(tracker, id);
    if (!session)
        return -1;
    if (session->finalized) {
        errno = EBUSY;
        return -1;
    }
    if (session_sync(session, &tracker->config.geo, ack_generation, out) < 0)
        return -1;
    if (persist(tracker) < 0) {
        dirty_list_free(out);
        return -1;
    }
    return 0;
}

/* The first Finalize: waits for writes in flight, then holds or refuses
 * every later one. Caller holds sync_lock. */
static void freeze(struct tracker *tracker)
{
    if (atomic_load(&tracker->state) != TRACKER_TRACKING)
        return;
    gate_set_mode(&tracker->gate, tracker->config.freeze == FREEZE_HOLD ? GATE_HOLD : GATE_REFUSE);
    atomic_store(&tracker->state, TRACKER_FROZEN);
}

int tracker_finalize(struct tracker *tracker, uint64_t id, uint64_t ack_generation,
                     struct dirty_list *out)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    struct session *session = find_session(tracker, id);
    if (!session)
        return -1;
    freeze(tracker);
    if (session_finalize(session, &tracker->config.geo, ack_generation, out) < 0)
        return -1;
    if (persist(tracker) < 0) {
        dirty_list_free(out);
        return -1;
    }
    return 0;
}

int tracker_complete(struct tracker *tracker, uint64_t id, bool *all_done)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    struct session *session = find_session(tracker, id);
    if (!session)
        return -1;
    if (!session->finalized) {
        errno = EBUSY;
        return -1;
    }
    session->complete = true;
    if (atomic_load(&tracker->state) != TRACKER_COMPLETE) {
        gate_set_mode(&tracker->gate, GATE_REFUSE); /* held writes fail with EPERM */
        atomic_store(&tracker->state, TRACKER_COMPLETE);
    }
    *all_done = true;
    for (size_t i = 0; i < tracker->n_sessions; i++)
        *all_done &= tracker->sessions[i]->complete;
    return persist(tracker);
}

int tracker_abort(struct tracker *tracker, struct abort_result *result)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    result->before = atomic_load(&tracker->state);
    if (result->before == TRACKER_COMPLETE) {
        errno = EBUSY;
        return -1;
    }
    /* The file goes first: a seeder restarted after a failed removal comes
     * back frozen (safe), never unfrozen with the old identity. */
    const char *path = tracker->config.state_path;
    if (path && state_file_remove(path) < 0) {
        log_error(tracker->config.log, "cannot remove the seeder state file %s: %s", path,
                  strerror(errno));
        errno = EIO;
        return -1;
    }
    if (new_identity(tracker, NULL) < 0)
        return -1;
    struct gate_stats held;
    gate_stats(&tracker->gate, &held);
    result->released = held.held_now;
    result->sessions = tracker->n_sessions;
    gate_lock_all(&tracker->gate);
    for (size_t i = 0; i < tracker->n_sessions; i++)
        session_free(tracker->sessions[i]);
    tracker->n_sessions = 0;
    tracker->default_session = 0;
    atomic_store(&tracker->state, TRACKER_SERVING);
    gate_unlock_all(&tracker->gate);
    gate_set_mode(&tracker->gate, GATE_OPEN); /* held writes run, in order */
    return 0;
}

void tracker_shutdown(struct tracker *tracker)
{
    gate_set_mode(&tracker->gate, GATE_SHUTDOWN);
}

static double seconds_since(const struct timespec *then, struct timespec *now)
{
    clock_gettime(CLOCK_MONOTONIC, now);
    return (double)(now->tv_sec - then->tv_sec) + (double)(now->tv_nsec - then->tv_nsec) / 1e9;
}

void tracker_stats(struct tracker *tracker, uint64_t id, uint64_t ack, struct tracker_stats *stats)
{
    LOCK_FOR_SCOPE(&tracker->sync_lock);
    stats->state = atomic_load(&tracker->state);
    struct session *session = find_session(tracker, id);
    stats->dirty_chunks = session ? session_dirty_count(session, ack) : 0;
    stats->sessions = tracker->n_sessions;
    gate_stats(&tracker->gate, &stats->gate);
    struct timespec now;
    double elapsed = seconds_since(&tracker->rate_time, &now);
    if (elapsed >= 1.0) {
        uint64_t total = atomic_load(&tracker->dirtied_total);
        tracker->rate = (double)(total - tracker->rate_total) / elapsed;
        tracker->rate_total = total;
        tracker->rate_time = now;
    }
    stats->dirty_rate = tracker->rate;
}
