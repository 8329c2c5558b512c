/* SPDX-License-Identifier: MIT */
/* The source side's migration state: the sessions (one per leecher, each
 * with its own dirty sets and Sync generations), the freeze at the first
 * Finalize (writes held or refused), Complete and Abort, the seeding's
 * identity, and its persistence beside the image. */
#ifndef GODWIT_SEEDER_TRACKER_H
#define GODWIT_SEEDER_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "session.h"
#include "write-gate.h"

enum tracker_state { TRACKER_SERVING, TRACKER_TRACKING, TRACKER_FROZEN, TRACKER_COMPLETE };

enum freeze_policy { FREEZE_HOLD, FREEZE_FAIL };

struct logger;
struct tracker;

struct tracker_config {
    struct chunk_geometry geo;
    enum freeze_policy freeze;
    struct gate_limits limits; /* held writes, under FREEZE_HOLD */
    unsigned max_sessions;
    const char *state_path; /* the persisted state (IMAGE.godwit-seeder); copied */
    struct logger *log;
};

/* Creates the tracker; restores the state file if there is one (then the
 * seeder is frozen or complete again, with the same identity and
 * sessions). NULL with one sentence in ERR if the state file cannot be
 * used (unreadable, another image's, corrupt). */
struct tracker *tracker_new(const struct tracker_config *config, char *err, size_t errlen);
void tracker_free(struct tracker *tracker);

/* The seeding's identity (128 random bits, hex) into ID. */
void tracker_image_id(struct tracker *tracker, char id[33]);

/* Brackets one write of COUNT bytes by the local app. tracker_begin_write
 * waits while the freeze holds writes, and fails with EPERM once they are
 * refused (--freeze fail, the hold cap, after Complete) or ESHUTDOWN at
 * exit; otherwise the caller writes, then calls tracker_end_write with
 * the range it tried (even if it failed: part of it may have landed),
 * which marks the chunks in every session. */
int tracker_begin_write(struct tracker *tracker, uint64_t count, struct gate_pass *pass);
void tracker_end_write(struct tracker *tracker, const struct gate_pass *pass, uint64_t offset,
                       uint64_t count);

struct image_file;
/* Flushes IMAGE unless no write ended since the last flush that succeeded
 * here; -1 with errno if the flush failed. */
int tracker_flush(struct tracker *tracker, const struct image_file *image);

/* Errors of the calls below, as errno: EBUSY the call does not fit the
 * state (FAILED_PRECONDITION), ESTALE no such session (FAILED_PRECONDITION),
 * EUSERS max_sessions open (RESOURCE_EXHAUSTED), EIO the state file could
 * not be written (UNAVAILABLE; retry), ENOMEM. */

struct track_request {
    uint64_t session_id; /* resume this session; 0: see new_session */
    bool new_session;    /* open a session of its own; else the default session */
};
struct track_result {
    uint64_t session_id;
    bool already_tracking; /* the session existed */
};
int tracker_track(struct tracker *tracker, const struct track_request *request,
                  struct track_result *result);

/* Sync and Finalize of SESSION (0: the default session) as seeder.proto
 * describes them. */
int tracker_sync(struct tracker *tracker, uint64_t session, uint64_t ack_generation,
                 struct dirty_list *out);
int tracker_finalize(struct tracker *tracker, uint64_t session, uint64_t ack_generation,
                     struct dirty_list *out);

/* Complete of SESSION: the source stays refused from now on. ALL_DONE
 * tells whether every session has completed. */
int tracker_complete(struct tracker *tracker, uint64_t session, bool *all_done);

struct abort_result {
    enum tracker_state before;
    uint64_t released; /* held writes let go */
    uint64_t sessions; /* sessions ended */
};
/* Abort: ends every session, draws a new identity, removes the state file
 * and lets held writes run in order. EBUSY after Complete. */
int tracker_abort(struct tracker *tracker, struct abort_result *result);

/* Fails held writes with ESHUTDOWN and refuses new ones (at exit). */
void tracker_shutdown(struct tracker *tracker);

struct tracker_stats {
    enum tracker_state state;
    uint64_t dirty_chunks; /* of the session asked for: what its Sync or Finalize reports now */
    double dirty_rate;     /* newly dirtied chunks per second, recent */
    uint64_t sessions;
    struct gate_stats gate; /* writes held by the freeze */
};
/* Stats, with the dirty count of SESSION (0: the default session; no
 * such session: 0). */
void tracker_stats(struct tracker *tracker, uint64_t session, uint64_t ack,
                   struct tracker_stats *stats);

#endif
