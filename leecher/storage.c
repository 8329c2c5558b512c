/* SPDX-License-Identifier: MIT */
/* The destination's file system filling up. A pull that cannot be stored
 * (ENOSPC, EDQUOT) stops every background pull at once instead of
 * re-pulling forever: the leecher says so (an error event, Status.error
 * naming the path and the space still needed, health NOT_SERVING) and the
 * monitor looks again every second; once there is room, pulls resume where
 * they stopped and health is SERVING again. */
#include "leecher.h"

#include "log.h"
#include "rpc-server.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

enum { RESUME_BYTES = 32 << 20 }; /* room that lets pulls go on (or all that is needed) */

bool storage_error(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

/* Bytes the image may still allocate: what is neither allocated nor local. */
static uint64_t bytes_needed(struct leecher *l)
{
    uint64_t remote = (l->geo.chunks - chunk_map_local(l->map)) * (uint64_t)l->geo.chunk_size;
    struct stat st;
    if (l->image.is_block_device || fstat(l->image.fd, &st) < 0)
        return remote;
    uint64_t allocated = (uint64_t)st.st_blocks * 512;
    uint64_t unallocated = l->geo.size > allocated ? l->geo.size - allocated : 0;
    return remote < unallocated ? remote : unallocated;
}

/* Free bytes for us on the image's file system; UINT64_MAX if unknown. */
static uint64_t bytes_free(struct leecher *l)
{
    struct statvfs vfs;
    if (l->image.is_block_device || fstatvfs(l->image.fd, &vfs) < 0)
        return UINT64_MAX;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

void storage_full(struct leecher *l)
{
    uint64_t needed = bytes_needed(l);
    pthread_mutex_lock(&l->lock);
    bool first = !l->storage_full && l->state != FAILED;
    if (first) {
        l->storage_full = true;
        snprintf(l->error, sizeof l->error,
                 "no space left on the file system of %s: pulls stopped; about %llu more bytes "
                 "are needed",
                 l->image_path, (unsigned long long)needed);
    }
    char message[sizeof l->error];
    snprintf(message, sizeof message, "%s", l->error);
    pthread_mutex_unlock(&l->lock);
    if (!first)
        return;
    if (l->control)
        rpc_server_set_serving(l->control, false);
    log_event(l->log, "error",
              json_pack("{s:s,s:s,s:I,s:b}", "error", message, "path", l->image_path,
                        "bytes_needed", (json_int_t)needed, "recoverable", 1));
}

void storage_check(struct leecher *l)
{
    pthread_mutex_lock(&l->lock);
    bool full = l->storage_full;
    pthread_mutex_unlock(&l->lock);
    if (!full)
        return;
    uint64_t needed = bytes_needed(l), room = bytes_free(l);
    uint64_t enough = needed < RESUME_BYTES ? needed : RESUME_BYTES;
    if (room < enough)
        return;
    pthread_mutex_lock(&l->lock);
    l->storage_full = false;
    bool failed = l->state == FAILED;
    if (!failed)
        l->error[0] = 0;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    if (l->control && !failed)
        rpc_server_set_serving(l->control, true);
    log_event(l->log, "space_recovered",
              json_pack("{s:s,s:I,s:I}", "path", l->image_path, "bytes_free", (json_int_t)room,
                        "bytes_needed", (json_int_t)needed));
}

void storage_warn_at_start(struct leecher *l)
{
    uint64_t needed = bytes_needed(l), room = bytes_free(l);
    if (room < needed)
        log_warn(l->log,
                 "the file system holding %s has %llu bytes free but the image may need %llu "
                 "more; pulls stop with an error when it fills up and resume once there is room",
                 l->image_path, (unsigned long long)room, (unsigned long long)needed);
}
