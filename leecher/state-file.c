/* SPDX-License-Identifier: MIT */
/* The state file next to the local image (IMAGE.godwit-state): the phase
 * of the migration, which chunks are local, for which seeder image and
 * which local file, and the last Sync generation recorded. Written to a
 * temporary file, fsynced and renamed over the old one, so after a crash
 * it never claims a chunk whose bytes did not reach the disk: a save
 * flushes the image first; a record (Finalize's, which must not wait for
 * the image's writeback) claims only chunks whose chunk-map word is the
 * one the last flush covered. A destination write makes its chunk local
 * for good: the next flush records it here before it is acknowledged
 * (state_file_persist_writes), and no record drops it again, so a
 * background pull never lands on it after a restart. */
#include "leecher.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC_V1 "godwit-state-v1"
#define STATE_MAGIC "godwit-state-v2"

/* Version 1 had this header and no more. */
struct state_header_v1 {
    char magic[16];
    char image_id[33];
    char pad[7];
    uint64_t size;
    uint64_t chunk_size;
    uint64_t ack_generation;
    uint64_t chunks;
};

struct state_header {
    struct state_header_v1 v1;
    uint32_t phase;       /* PRECOPY, POSTCOPY or COMPLETE */
    uint32_t max_read;    /* the seeder's largest ReadAt */
    uint64_t image_inode; /* the local image file this state describes */
    uint64_t downtime_us;
    uint64_t finalize_dirty;
    uint64_t session_id; /* the seeder session (0: the default one) */
};

static uint64_t bitmap_words(uint64_t chunks)
{
    return (chunks + 63) / 64;
}

/* Reads the header; 0, or -1 with a sentence in ERR. */
static int read_header(FILE *f, const char *path, struct state_header *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (fread(&h->v1, sizeof h->v1, 1, f) == 1 && memcmp(h->v1.magic, STATE_MAGIC_V1, 16) == 0) {
        h->phase = PRECOPY; /* version 1 was only ever written in pre-copy terms */
        return 0;
    }
    if (memcmp(h->v1.magic, STATE_MAGIC, 16) == 0 &&
        fread((char *)h + sizeof h->v1, sizeof *h - sizeof h->v1, 1, f) == 1 &&
        (h->phase == PRECOPY || h->phase == POSTCOPY || h->phase == COMPLETE) &&
        memchr(h->v1.image_id, 0, sizeof h->v1.image_id))
        return 0;
    snprintf(err, errlen, "%s is not a godwit state file; remove it to start over", path);
    return -1;
}

int state_file_peek(const char *path, struct state_summary *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct state_header h;
    int r = read_header(f, path, &h, err, errlen);
    fclose(f);
    if (r < 0)
        return -1;
    *out = (struct state_summary){.phase = (enum leecher_state)h.phase,
                                  .size = h.v1.size,
                                  .chunk_size = h.v1.chunk_size,
                                  .image_inode = h.image_inode};
    snprintf(out->image_id, sizeof out->image_id, "%s", h.v1.image_id);
    return 1;
}

/* The image on disk must be the very file this state describes. */
static int check_image(struct leecher *l, const struct state_header *h, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(l->image.fd, &st) < 0) {
        snprintf(err, errlen, "cannot stat the local image: %s", strerror(errno));
        return -1;
    }
    if (h->image_inode && !S_ISBLK(st.st_mode) && (uint64_t)st.st_ino != h->image_inode) {
        snprintf(err, errlen,
                 "%s describes another file than the local image (inode %llu, not %llu): it "
                 "was replaced or copied; refusing to trust it: restore the image or remove "
                 "the state file to start over",
                 l->state_path, (unsigned long long)h->image_inode, (unsigned long long)st.st_ino);
        return -1;
    }
    return 0;
}

static int load_bits(struct leecher *l, FILE *f, uint64_t chunks, char *err, size_t errlen)
{
    uint64_t words = bitmap_words(chunks);
    uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
    if (!bits) {
        snprintf(err, errlen, "out of memory reading %s", l->state_path);
        return -1;
    }
    if (fread(bits, sizeof *bits, words, f) != words) {
        snprintf(err, errlen, "%s is truncated; remove it to start over", l->state_path);
        free(bits);
        return -1;
    }
    for (uint64_t c = 0; c < chunks; c++)
        if (bits[c / 64] & (1ull << (c % 64))) {
            chunk_map_set_local(l->map, c);
            atomic_fetch_or(&l->saved_local[c / 64], 1ull << (c % 64));
            l->flushed_words[c] = chunk_map_word(l->map, c); /* on disk when recorded */
        }
    free(bits);
    return 0;
}

int state_file_load(struct leecher *l, char *err, size_t errlen)
{
    FILE *f = fopen(l->state_path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    struct state_header h;
    int r = -1;
    if (read_header(f, l->state_path, &h, err, errlen) < 0) {
        /* said */
    } else if (strcmp(h.v1.image_id, l->image_id) != 0) {
        snprintf(err, errlen,
                 "%s holds part of image %s but the seeder now serves %s (it restarted?); "
                 "refusing to mix two images: remove the local image and its state file to "
                 "start over",
                 l->state_path, h.v1.image_id, l->image_id);
    } else if (h.v1.size != l->geo.size || h.v1.chunk_size != l->geo.chunk_size ||
               h.v1.chunks != l->geo.chunks) {
        snprintf(err, errlen, "%s does not match the image's size or chunk size", l->state_path);
    } else if (check_image(l, &h, err, errlen) == 0 &&
               load_bits(l, f, h.v1.chunks, err, errlen) == 0) {
        l->ack_generation = h.v1.ack_generation;
        l->session_id = h.session_id;
        if (memcmp(h.v1.magic, STATE_MAGIC_V1, 16) == 0 &&
            fread(&l->session_id, sizeof l->session_id, 1, f) != 1)
            l->session_id = 0; /* version 1 kept it after the bitmap, if at all */
        l->state = (enum leecher_state)h.phase;
        l->downtime_us = h.downtime_us;
        l->finalize_dirty = h.finalize_dirty;
        if (h.max_read)
            l->max_read = h.max_read;
        r = 1;
    }
    fclose(f);
    return r;
}

/* What the file will say, taken under the leecher's lock. */
static void fill_header(struct leecher *l, struct state_header *h)
{
    *h = (struct state_header){
        .v1 = {.size = l->geo.size, .chunk_size = l->geo.chunk_size, .chunks = l->geo.chunks},
        .image_inode = l->image_inode,
        .max_read = l->max_read,
        .session_id = l->session_id};
    memcpy(h->v1.magic, STATE_MAGIC, 16);
    memcpy(h->v1.image_id, l->image_id, sizeof h->v1.image_id);
    pthread_mutex_lock(&l->lock);
    h->v1.ack_generation = l->ack_generation;
    /* FINALIZING is not a phase to resume: the freeze may or may not have
     * happened; a restart asks the seeder (Info) and finishes it. */
    h->phase = l->state == POSTCOPY || l->state == COMPLETE ? (uint32_t)l->state : PRECOPY;
    if (l->state == FAILED && l->gate_open)
        h->phase = POSTCOPY; /* the export was live: never go back to pre-copy */
    h->downtime_us = l->downtime_us;
    h->finalize_dirty = l->finalize_dirty;
    pthread_mutex_unlock(&l->lock);
}

/* Writes HEADER and BITS to the temporary name, fsyncs, renames it over
 * the state file and syncs the directory. */
static int write_file(struct leecher *l, const struct state_header *h, const uint64_t *bits,
                      uint64_t words)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", l->state_path);
    FILE *f = fopen(tmp, "wb");
    int r = -1;
    if (f && fwrite(h, sizeof *h, 1, f) == 1 && fwrite(bits, sizeof *bits, words, f) == words &&
        fflush(f) == 0 && fsync(fileno(f)) == 0)
        r = 0;
    int saved = errno;
    if (f && fclose(f) != 0 && r == 0)
        r = -1, saved = errno;
    if (r == 0 && rename(tmp, l->state_path) < 0)
        r = -1, saved = errno;
    if (r == 0 && l->state_dir_fd >= 0)
        fsync(l->state_dir_fd);
    errno = saved;
    return r;
}

/* Which chunks a save records as local, into BITS. FLUSHING: the image is
 * flushed after this, so every local chunk is (*WORDS gets the words the
 * flush will cover). Otherwise only chunks whose word is still the one
 * the last flush covered: their bytes are on disk. Returns false if a
 * record without a flush would drop a chunk the destination app wrote
 * (its write may have been flushed by the app: it must stay recorded). */
static bool choose_local(struct leecher *l, bool flushing, uint64_t *bits, uint32_t *words)
{
    for (uint64_t c = 0; c < l->geo.chunks; c++) {
        uint32_t word = chunk_map_word(l->map, c);
        bool local = chunk_word_is_local(word);
        if (flushing)
            words[c] = word;
        else if (local && word != l->flushed_words[c]) {
            if ((enum chunk_state)(word & 3) == CHUNK_WRITTEN)
                return false;
            local = false; /* pulled since the last flush: pulled again after a crash */
        }
        if (local)
            bits[c / 64] |= 1ull << (c % 64);
    }
    return true;
}

static int save_locked(struct leecher *l, bool flush)
{
    struct state_header h;
    uint64_t words = bitmap_words(l->geo.chunks);
    uint64_t *bits = calloc(words ? words : 1, sizeof *bits);
    uint32_t *flushed = calloc(l->geo.chunks ? l->geo.chunks : 1, sizeof *flushed);
    if (!bits || !flushed) {
        free(bits);
        free(flushed);
        return errno = ENOMEM, -1;
    }
    /* Cleared before the snapshot: a write that becomes WRITTEN after this
     * line sets it again, so the next flush saves once more. */
    atomic_store(&l->unsaved_writes, false);
    fill_header(l, &h);
    if (!flush && !choose_local(l, false, bits, NULL)) {
        memset(bits, 0, words * sizeof *bits);
        flush = true;
    }
    if (flush)
        choose_local(l, true, bits, flushed);
    /* Flush after the snapshot: every chunk it calls local is on disk. */
    int r = flush && image_flush(&l->image) < 0 ? -1 : write_file(l, &h, bits, words);
    if (r == 0) {
        for (uint64_t w = 0; w < words; w++)
            atomic_store(&l->saved_local[w], bits[w]);
        if (flush)
            memcpy(l->flushed_words, flushed, l->geo.chunks * sizeof *flushed);
    } else {
        atomic_store(&l->unsaved_writes, true);
    }
    free(bits);
    free(flushed);
    return r;
}

int state_file_save(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->save_lock);
    return save_locked(l, true);
}

int state_file_record(struct leecher *l)
{
    LOCK_FOR_SCOPE(&l->save_lock);
    return save_locked(l, false);
}

void state_file_note_written(struct leecher *l, uint64_t chunk)
{
    if (!(atomic_load(&l->saved_local[chunk / 64]) & (1ull << (chunk % 64))))
        atomic_store(&l->unsaved_writes, true);
}

int state_file_persist_writes(struct leecher *l)
{
    if (atomic_load(&l->unsaved_writes))
        return state_file_save(l); /* flushes, and records every chunk written */
    return image_flush(&l->image);
}
