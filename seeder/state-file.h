/* SPDX-License-Identifier: MIT */
/* The seeder's persisted migration state (IMAGE.godwit-seeder): written
 * from the freeze on, so that a restarted seeder is still frozen (or
 * complete), with the same identity, sessions and final dirty sets. JSON,
 * written to a temporary file, fsynced and renamed over the old one, then
 * the directory fsynced: a crash leaves the old file or the new one. */
#ifndef GODWIT_SEEDER_STATE_FILE_H
#define GODWIT_SEEDER_STATE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "session.h"

/* What is persisted. On load, sessions is allocated (free each with
 * session_free and the array with free). */
struct seeder_state {
    char image_id[33];
    int phase; /* enum tracker_state: TRACKER_FROZEN or TRACKER_COMPLETE */
    uint64_t next_session;
    uint64_t default_session; /* 0: none */
    struct session **sessions;
    size_t n_sessions;
};

/* 0, or -1 with errno. */
int state_file_save(const char *path, const struct chunk_geometry *geo,
                    const struct seeder_state *state);

/* Removes PATH (missing is fine) and makes that durable; -1 with errno. */
int state_file_remove(const char *path);

/* 1 loaded into STATE, 0 no file, -1 with one sentence in ERR. */
int state_file_load(const char *path, const struct chunk_geometry *geo, struct seeder_state *state,
                    char *err, size_t errlen);

#endif
