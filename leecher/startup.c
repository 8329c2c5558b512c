/* SPDX-License-Identifier: MIT */
/* How the leecher starts: fresh (Info, Track, an empty local image), or
 * resumed from its state file in the phase it recorded. A pre-copy resume
 * goes on tracking, or finishes a freeze the seeder already made; a
 * post-copy resume opens the export at once and pulls what is still
 * remote (the seeder need not be up yet); a complete one serves the image
 * without the seeder at all. The local image must be the file the state
 * describes: missing, shorter or replaced, the leecher refuses to start. */
#include "leecher.h"

#include "log.h"
#include "pull-order.h"
#include "seeder-client.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *phase_names[] = {"", "pre-copy", "finalizing", "post-copy", "complete", ""};

/* Info: the image's identity and geometry as the seeder serves it. */
static int learn_image(struct leecher *l, const char *seeder, int *seeder_state, char *err,
                       size_t errlen)
{
    struct rpc_result result;
    Godwit__V1__InfoResponse *info = seeder_client_info(l->seeder, &result);
    if (!info) {
        snprintf(err, errlen, "cannot reach the seeder at %s: %s", seeder, result.message);
        return -1;
    }
    snprintf(l->image_id, sizeof l->image_id, "%s", info->image_id);
    l->max_read = info->max_read_length;
    *seeder_state = info->state;
    if (l->checksums && info->checksum != GODWIT__V1__CHECKSUM_KIND__CHECKSUM_KIND_XXH3_64) {
        log_warn(l->log,
                 "the seeder at %s does not checksum ReadAt replies (an older godwit): "
                 "pulled chunks are not verified",
                 seeder);
        l->checksums = false;
    }
    int r = chunk_geometry_init(&l->geo, info->size, info->chunk_size);
    protobuf_c_message_free_unpacked(&info->base, NULL);
    if (r < 0) {
        snprintf(err, errlen, "the seeder reports an unusable chunk size");
        return -1;
    }
    return 0;
}

/* Opens the image (a fresh start creates it, sparse) and everything sized
 * by it. FROM_STATE: the state file describes it, so it must exist. */
static int open_image(struct leecher *l, const char *path, bool from_state, char *err,
                      size_t errlen)
{
    bool exists = access(path, F_OK) == 0;
    if (image_open(&l->image, path, exists ? 0 : l->geo.size, err, errlen) < 0)
        return -1;
    if (l->image.size != l->geo.size) {
        if (from_state)
            snprintf(err, errlen,
                     "the local image %s is %llu bytes but %s describes %llu: it was truncated "
                     "or replaced; restore it or remove the state file to start over",
                     path, (unsigned long long)l->image.size, l->state_path,
                     (unsigned long long)l->geo.size);
        else
            snprintf(err, errlen,
                     "the local image %s is %llu bytes but the seeder's image is %llu: remove "
                     "it or give another --image",
                     path, (unsigned long long)l->image.size, (unsigned long long)l->geo.size);
        return -1;
    }
    struct stat st;
    if (fstat(l->image.fd, &st) == 0)
        l->image_inode = (uint64_t)st.st_ino;
    l->map = chunk_map_new(l->geo.chunks);
    l->order = l->map ? pull_order_open(&pull_order_sequential, l->map, l->geo.chunks) : NULL;
    l->saved_local = calloc(l->geo.chunks / 64 + 1, sizeof *l->saved_local);
    l->flushed_words = calloc(l->geo.chunks ? l->geo.chunks : 1, sizeof *l->flushed_words);
    if (!l->order || !l->saved_local || !l->flushed_words) {
        snprintf(err, errlen, "out of memory for the chunk map of %llu chunks",
                 (unsigned long long)l->geo.chunks);
        return -1;
    }
    return 0;
}

/* The state file's directory, to fsync after each rename. */
static void open_state_dir(struct leecher *l)
{
    char *copy = strdup(l->state_path);
    l->state_dir_fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    free(copy);
}

/* Track: starts the source's tracking in this leecher's own session, or
 * resumes the session the state file names (before any pull starts). */
static int track_session(struct leecher *l, bool resumed, char *err, size_t errlen)
{
    struct rpc_result result;
    if (seeder_client_track(l->seeder, !resumed, &l->session_id, &result) != GRPC_STATUS_OK) {
        snprintf(err, errlen, "Seeder.Track failed: %s", result.message);
        return -1;
    }
    /* A restart must find the session: the syncer records it as it starts,
     * off the start-up's path (its fsyncs took 1-90 ms here). A crash
     * before that opens another session, as a crash before a save here
     * always did. */
    l->session_unrecorded = !resumed;
    log_info(l->log, "%s seeder session %llu", resumed ? "resumed" : "opened",
             (unsigned long long)l->session_id);
    return 0;
}

/* A fresh start or a pre-copy resume: Info, then the image, then Track
 * (unless the seeder is frozen already: then the freeze is finished). */
static int start_precopy(struct leecher *l, const char *seeder, const char *path, bool from_state,
                         char *err, size_t errlen)
{
    int seeder_state;
    if (learn_image(l, seeder, &seeder_state, err, errlen) < 0 ||
        open_image(l, path, from_state, err, errlen) < 0)
        return -1;
    int resumed = state_file_load(l, err, errlen);
    if (resumed < 0)
        return -1;
    if (seeder_state >= GODWIT__V1__SEEDER_STATE__SEEDER_STATE_FROZEN) {
        if (!resumed) {
            snprintf(err, errlen,
                     "the seeder at %s is frozen by a migration this leecher has no record of; "
                     "Abort it first (godwit-ctl --seeder %s abort) or resume the leecher that "
                     "started it",
                     seeder, seeder);
            return -1;
        }
        /* The leecher stopped between the freeze and recording it: the
         * seeder answers the same Finalize again (it is idempotent). */
        seeder_client_use_session(l->seeder, l->session_id);
        l->resume_finalize = true;
        l->final_sync = false;
        return resumed;
    }
    if (track_session(l, resumed > 0, err, errlen) < 0)
        return -1;
    leecher_take_holes(l); /* after Track: a later write to a hole is in the dirty set */
    return resumed;
}

/* Post-copy or complete: the state file alone describes the image. */
static int start_resumed(struct leecher *l, const struct state_summary *s, const char *path,
                         char *err, size_t errlen)
{
    snprintf(l->image_id, sizeof l->image_id, "%s", s->image_id);
    if (chunk_geometry_init(&l->geo, s->size, (uint32_t)s->chunk_size) < 0) {
        snprintf(err, errlen, "%s records an unusable chunk size", l->state_path);
        return -1;
    }
    if (open_image(l, path, true, err, errlen) < 0 || state_file_load(l, err, errlen) < 0)
        return -1;
    seeder_client_use_session(l->seeder, l->session_id);
    /* No Info here: the export opens at once, whether or not the seeder is
     * up; every ReadAt names the image, so a seeder that serves another
     * one refuses it and the leecher fails loudly. */
    l->gate_open = true;
    return 1;
}

int leecher_prepare(struct leecher *l, const char *seeder, const char *path, char *err,
                    size_t errlen)
{
    if (asprintf(&l->state_path, "%s.godwit-state", path) < 0) {
        l->state_path = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    open_state_dir(l);
    struct state_summary s;
    int found = state_file_peek(l->state_path, &s, err, errlen);
    if (found < 0)
        return -1;
    if (found && access(path, F_OK) < 0) {
        snprintf(err, errlen,
                 "the local image %s is missing but %s records a %s migration of image %s; "
                 "restore the image, or remove the state file to start over",
                 path, l->state_path, phase_names[s.phase], s.image_id);
        return -1;
    }
    bool resumed_late = found && (s.phase == POSTCOPY || s.phase == COMPLETE);
    int r = resumed_late ? start_resumed(l, &s, path, err, errlen)
                         : start_precopy(l, seeder, path, found, err, errlen);
    if (r < 0)
        return -1;
    l->seeder_contacted = !resumed_late;
    l->image_path = path;
    storage_warn_at_start(l);
    return r;
}

void leecher_log_start(struct leecher *l, bool resumed)
{
    log_event(l->log, resumed ? "resumed" : "started",
              json_pack("{s:s,s:s,s:I,s:i,s:I,s:I,s:i}", "image_id", l->image_id, "phase",
                        phase_names[l->state], "size", (json_int_t)l->geo.size, "chunk_size",
                        (int)l->geo.chunk_size, "chunks_total", (json_int_t)l->geo.chunks,
                        "chunks_local", (json_int_t)chunk_map_local(l->map), "workers",
                        (int)l->n_workers));
}
