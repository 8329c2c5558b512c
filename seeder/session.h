/* SPDX-License-Identifier: MIT */
/* One leecher's view of the source: its own dirty set (marked by every
 * local write), the set its last Sync returned (pending until
 * acknowledged), its generation counter, and its Finalize answer. Each
 * leecher has its own, so one's acknowledgement never hides a write from
 * another. */
#ifndef GODWIT_SEEDER_SESSION_H
#define GODWIT_SEEDER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

struct dirty_set;

/* A dirty list: chunk offsets in ascending order, and for Sync the page
 * mask of each (dirty_set_list; NULL for Finalize, whose chunks are whole).
 * Free both with dirty_list_free. */
struct dirty_list {
    uint64_t *offsets;
    uint64_t *pages;
    size_t count;
    uint64_t generation;   /* Sync: names this set */
    int already_finalized; /* Finalize: a retry */
};

/* dirty is marked lock-free by writers (under the write gate, shared);
 * everything else is owned by the tracker's sync_lock. */
struct session {
    uint64_t id;
    struct dirty_set *dirty;   /* written since the last Sync */
    struct dirty_set *pending; /* returned by the last Sync, not acknowledged */
    uint64_t generation;       /* of pending */
    struct dirty_list frozen;  /* the Finalize answer, kept for retries */
    bool finalized;            /* frozen holds the answer */
    bool complete;             /* the leecher called Complete */
};

void dirty_list_free(struct dirty_list *list);

struct session *session_new(uint64_t id, uint64_t chunks);
void session_free(struct session *session);

/* Sync: acknowledges ACK, moves dirty into pending and lists it with its
 * page masks. 0, or -1 with errno ENOMEM. */
int session_sync(struct session *session, const struct chunk_geometry *geo, uint64_t ack,
                 struct dirty_list *out);

/* Finalize: the first call makes the answer (pending unless ACK names it,
 * plus dirty); every call copies it into OUT. 0, or -1 with errno ENOMEM
 * (pending keeps everything, so a retry still reports every chunk). */
int session_finalize(struct session *session, const struct chunk_geometry *geo, uint64_t ack,
                     struct dirty_list *out);

/* What a Finalize acknowledging ACK (0: none) would report now. */
uint64_t session_dirty_count(const struct session *session, uint64_t ack);

#endif
