/* SPDX-License-Identifier: MIT */
/* A leecher's session: Sync generations and the Finalize answer over its
 * own dirty sets. */
#include "session.h"

#include "dirty-set.h"

#include <errno.h>
#include <stdlib.h>

struct session *session_new(uint64_t id, uint64_t chunks)
{
    struct session *session = calloc(1, sizeof *session);
    if (!session)
        return NULL;
    session->id = id;
    session->dirty = dirty_set_new(chunks);
    session->pending = dirty_set_new(chunks);
    if (!session->dirty || !session->pending) {
        session_free(session);
        errno = ENOMEM;
        return NULL;
    }
    return session;
}

void session_free(struct session *session)
{
    if (!session)
        return;
    dirty_set_free(session->dirty);
    dirty_set_free(session->pending);
    dirty_list_free(&session->frozen);
    free(session);
}

void dirty_list_free(struct dirty_list *list)
{
    free(list->offsets);
    free(list->pages);
    list->offsets = list->pages = NULL;
}

/* Lists SET as chunk offsets into OUT, with the page masks if PAGES. */
static int list_offsets(const struct chunk_geometry *geo, const struct dirty_set *set, bool pages,
                        struct dirty_list *out)
{
    size_t count = (size_t)dirty_set_count(set);
    out->offsets = malloc((count ? count : 1) * sizeof *out->offsets);
    out->pages = pages ? malloc((count ? count : 1) * sizeof *out->pages) : NULL;
    if (!out->offsets || (pages && !out->pages)) {
        dirty_list_free(out);
        errno = ENOMEM;
        return -1;
    }
    out->count = dirty_set_list(set, out->offsets, out->pages, count);
    for (size_t i = 0; i < out->count; i++)
        out->offsets[i] = chunk_offset(geo, out->offsets[i]);
    return 0;
}

int session_sync(struct session *session, const struct chunk_geometry *geo, uint64_t ack,
                 struct dirty_list *out)
{
    if (ack != 0 && ack == session->generation)
        dirty_set_clear(session->pending);
    dirty_set_take(session->dirty, session->pending);
    if (list_offsets(geo, session->pending, true, out) < 0)
        return -1;
    out->generation = ++session->generation;
    out->already_finalized = 0;
    return 0;
}

static int copy_list(const struct dirty_list *from, struct dirty_list *out)
{
    *out = *from;
    out->pages = NULL;
    out->offsets = malloc((from->count ? from->count : 1) * sizeof *out->offsets);
    if (!out->offsets) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < from->count; i++)
        out->offsets[i] = from->offsets[i];
    return 0;
}

int session_finalize(struct session *session, const struct chunk_geometry *geo, uint64_t ack,
                     struct dirty_list *out)
{
    bool retry = session->finalized;
    if (!session->finalized) {
        if (ack != 0 && ack == session->generation)
            dirty_set_clear(session->pending);
        dirty_set_take(session->dirty, session->pending);
        if (list_offsets(geo, session->pending, false, &session->frozen) < 0)
            return -1;
        session->finalized = true;
    }
    if (copy_list(&session->frozen, out) < 0)
        return -1;
    out->already_finalized = retry;
    return 0;
}

uint64_t session_dirty_count(const struct session *session, uint64_t ack)
{
    if (session->finalized)
        return session->frozen.count;
    if (ack && ack == session->generation) /* pending is recorded: Finalize leaves it out */
        return dirty_set_count(session->dirty);
    return dirty_set_count_union(session->dirty, session->pending);
}
