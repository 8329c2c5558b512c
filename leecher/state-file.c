/* SPDX-License-Identifier: MIT */
/* The state file next to the local image (IMAGE.godwit-state): which
 * chunks are local, for which seeder image, the last Sync generation
 * recorded, and (after the bitmap, absent in older files) the seeder
 * session, so a restarted leecher resumes its own. Written to a temporary file, fsynced and renamed
 * over the old one after the image itself was flushed, so after a crash it never claims a chunk
 * whose bytes did not reach the disk. */
#include "leecher.h"

#include "cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_MAGIC "godwit-state-v1"

struct state_header {
    char magic[16];
    char image_id[33];
    char pad[7];
    uint64_t size;
    uint64_t chunk_size;
    uint64_t ack_generation;
    uint64_t chunks;
};

int state_file_load(struct leecher *l, char *err, size_t errlen)
{
    FILE *f = fopen(l->state_path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    struct state_header h;
    int r = -1;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, STATE_MAGIC, 16) != 0) {
        snprintf(err, errlen, "%s is not a godwit state file; remove it to start over",
                 l->state_path);
    } else if (strcmp(h.image_id, l->image_id) != 0) {
        snprintf(err, errlen,
                 "%s holds part of image %s but the seeder now serves %s (it restarted?); "
                 "refusing to mix two images: remove the local image and its state file to "
                 "start over",
                 l->state_path, h.image_id, l->image_id);
    } else if (h.size != l->geo.size || h.chunk_size != l->geo.chunk_size ||
               h.chunks != l->geo.chunks) {
        snprintf(err, errlen, "%s does not match the image's size or chunk size", l->state_path);
    } else {
        uint64_t words = (h.chunks + 63) / 64;
        uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
        if (bits && fread(bits, sizeof *bits, words, f) == words) {
            for (uint64_t c = 0; c < h.chunks; c++)
                if (bits[c / 64] & (1ull << (c % 64)))
                    chunk_map_set_local(l->map, c);
            l->ack_generation = h.ack_generation;
            uint64_t session = 0; /* a file from before sessions: the default session */
            l->session_id = fread(&session, sizeof session, 1, f) == 1 ? session : 0;
            r = 1;
        } else if (!bits) {
            snprintf(err, errlen, "out of memory reading %s", l->state_path);
        } else {
            snprintf(err, errlen, "%s is truncated; remove it to start over", l->state_path);
        }
        free(bits);
    }
    fclose(f);
    return r;
}

/* Writes the state file, with save_lock held. */
static int save_locked(struct leecher *l)
{
    struct state_header h = {
        .size = l->geo.size, .chunk_size = l->geo.chunk_size, .chunks = l->geo.chunks};
    memcpy(h.magic, STATE_MAGIC, 16);
    memcpy(h.image_id, l->image_id, sizeof h.image_id);
    pthread_mutex_lock(&l->lock);
    h.ack_generation = l->ack_generation;
    pthread_mutex_unlock(&l->lock);
    uint64_t words = (h.chunks + 63) / 64;
    uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
    if (!bits)
        return errno = ENOMEM, -1; /* callers log "cannot write STATE: ..." */
    for (uint64_t c = 0; c < h.chunks; c++)
        if (chunk_state_is_local(chunk_map_state(l->map, c)))
            bits[c / 64] |= 1ull << (c % 64);
    /* Flush after the snapshot: every chunk it calls local is on disk. */
    if (image_flush(&l->image) < 0) {
        free(bits);
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", l->state_path);
    FILE *f = fopen(tmp, "wb");
    int r = -1;
    if (f && fwrite(&h, sizeof h, 1, f) == 1 && fwrite(bits, sizeof *bits, words, f) == words &&
        fwrite(&l->session_id, sizeof l->session_id, 1, f) == 1 && fflush(f) == 0 &&
        fsync(fileno(f)) == 0)
        r = 0;
    if (f)
        fclose(f);
    free(bits);
    if (r == 0)
        r = rename(tmp, l->state_path);
    return r;
}

int state_file_save(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->save_lock); /* one temporary name: one writer at a time */
    return save_locked(l);
}
