/* SPDX-License-Identifier: MIT */
/* Per-chunk state of the destination image: one atomic 32-bit word per
 * chunk (state in the low 2 bits, a version above) and a 64-bit mask of
 * the pages still current in a REMOTE chunk, 12 bytes per chunk, so a
 * 64 GiB image with 256 KiB chunks needs 3 MiB. The
 * version changes whenever the source re-dirties a chunk or the
 * destination app overwrites it, so a pull that started before cannot
 * commit stale bytes. */
#ifndef GODWIT_LEECHER_CHUNK_MAP_H
#define GODWIT_LEECHER_CHUNK_MAP_H

#include <stdbool.h>
#include <stdint.h>

enum chunk_state {
    CHUNK_REMOTE = 0,  /* must be pulled */
    CHUNK_PULLING = 1, /* a pull has claimed it */
    CHUNK_LOCAL = 2,   /* the local copy is current */
    CHUNK_WRITTEN = 3, /* the destination app wrote it: never pulled again */
};

struct chunk_map;

struct chunk_map *chunk_map_new(uint64_t chunks);
void chunk_map_free(struct chunk_map *map);

/* Chunks LOCAL or WRITTEN. */
uint64_t chunk_map_local(const struct chunk_map *map);
/* Chunks that have been LOCAL or WRITTEN at least once: only grows, and
 * reaches the total when every chunk is local (forward-only progress). */
uint64_t chunk_map_ever_local(const struct chunk_map *map);
enum chunk_state chunk_map_state(const struct chunk_map *map, uint64_t chunk);
/* The chunk's whole word, state and version. Every state change, every
 * committed pull and every re-dirtying changes it (versions only grow), so
 * a LOCAL chunk whose word is the same at two moments holds the same bytes
 * throughout; the state file relies on this to record chunks without a
 * flush. (A WRITTEN chunk's bytes are the destination app's: partial
 * writes to it leave the word as it is.) */
uint32_t chunk_map_word(const struct chunk_map *map, uint64_t chunk);
static inline bool chunk_state_is_local(enum chunk_state s)
{
    return s == CHUNK_LOCAL || s == CHUNK_WRITTEN;
}
static inline bool chunk_word_is_local(uint32_t word)
{
    return chunk_state_is_local((enum chunk_state)(word & 3));
}

/* REMOTE -> PULLING. On success stores the claim (the word) in *TICKET. */
bool chunk_map_claim(struct chunk_map *map, uint64_t chunk, uint32_t *ticket);

/* PULLING -> REMOTE after a failed pull (if the claim still holds). */
void chunk_map_release(struct chunk_map *map, uint64_t chunk, uint32_t ticket);

/* Commits a pull: if the claim still holds, runs STORE (which writes the
 * bytes to the image) and marks the chunk LOCAL, all under the chunk's
 * stripe lock; returns STORE's result, or 1 if the claim went stale (the
 * bytes were dropped). */
int chunk_map_commit(struct chunk_map *map, uint64_t chunk, uint32_t ticket,
                     int (*store)(void *arg), void *arg);

/* A read's pages of CHUNK, which is not local: if the chunk is still
 * neither LOCAL nor WRITTEN and its version is still SEEN's (nothing
 * re-dirtied or overwrote it since SEEN was read with chunk_map_word),
 * runs STORE (which writes those pages to the image) and adds PAGES to
 * the chunk's current pages, under its stripe lock. The chunk turns LOCAL
 * only once all of it is stored: here if that makes every one of EVERY
 * (the chunk's pages) current and no pull has claimed it, else when the
 * pull of its stale pages commits; so neither the map nor the state file
 * calls it local before. Returns STORE's result, or 1 if the chunk
 * changed (the bytes were dropped: it is local now, or stale again). */
int chunk_map_commit_pages(struct chunk_map *map, uint64_t chunk, uint32_t seen, uint64_t pages,
                           uint64_t every, int (*store)(void *arg), void *arg);

/* The source re-dirtied PAGES of CHUNK (a mask of its 64 pages, chunk.h;
 * 0: all of it): it becomes REMOTE with a new version (a WRITTEN chunk
 * stays WRITTEN). The other pages stay current if the chunk was LOCAL or
 * they were current before, so its next pull fetches only the stale ones.
 * Returns true if it had been LOCAL or being pulled (i.e. re-dirtied after
 * a pull). */
bool chunk_map_mark_remote(struct chunk_map *map, uint64_t chunk, uint64_t pages);

/* The pages a pull of CHUNK must fetch (every bit: the whole chunk). Ask
 * after claiming it: a later change also changes the word, so a pull that
 * fetched too little cannot commit. The others are on disk and current
 * (in post-copy nothing makes a current page stale again: only pre-copy
 * marks, and the destination app's writes make the chunk local first). */
uint64_t chunk_map_stale_pages(const struct chunk_map *map, uint64_t chunk);

/* How many times a chunk has turned REMOTE (released, failed, marked): a
 * scan that found nothing to claim stays right until this moves. */
uint64_t chunk_map_remote_events(const struct chunk_map *map);

/* The destination app overwrites all of CHUNK: under the stripe lock, the
 * chunk becomes WRITTEN (cancelling any pull) and STORE writes the bytes. */
int chunk_map_overwrite(struct chunk_map *map, uint64_t chunk, int (*store)(void *arg), void *arg);

/* A LOCAL chunk the destination app wrote part of becomes WRITTEN. */
void chunk_map_mark_written(struct chunk_map *map, uint64_t chunk);

/* Marks CHUNK LOCAL (resume from a state file). */
void chunk_map_set_local(struct chunk_map *map, uint64_t chunk);

#endif
