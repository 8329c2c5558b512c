/* SPDX-License-Identifier: MIT */
/* The chunk map: lock-free state changes with compare-and-swap; commits
 * and overwrites (which also write bytes to the image) are serialised per
 * chunk by a small array of stripe locks, so a stale pull can never land
 * after a newer one. */
#include "chunk-map.h"

#include "cleanup.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { STRIPES = 64 };

struct chunk_map {
    uint64_t chunks;
    _Atomic uint64_t local;           /* chunks LOCAL or WRITTEN */
    _Atomic uint64_t became_remote;   /* bumped each time a chunk turns REMOTE */
    pthread_mutex_t stripes[STRIPES]; /* serialise commit/overwrite/mark of a chunk */
    _Atomic uint32_t *words;          /* state | version << 2, CAS only */
    _Atomic uint64_t *fresh;          /* per chunk: pages current while REMOTE or PULLING
                                       * (marked pages leave it, a read's stored pages join
                                       * it); written under the chunk's stripe lock */
    _Atomic uint64_t *ever;           /* bit per chunk: has been local once (fetch_or) */
    _Atomic uint64_t ever_count;      /* bits set in ever: only grows */
};

/* CHUNK is local now: counts it the first time. */
static void note_local(struct chunk_map *map, uint64_t chunk)
{
    uint64_t bit = 1ull << (chunk % 64);
    if (!(atomic_fetch_or(&map->ever[chunk / 64], bit) & bit))
        atomic_fetch_add(&map->ever_count, 1);
}

static uint32_t make(enum chunk_state state, uint32_t version)
{
    return (version << 2) | (uint32_t)state;
}

static enum chunk_state state_of(uint32_t word)
{
    return (enum chunk_state)(word & 3);
}

struct chunk_map *chunk_map_new(uint64_t chunks)
{
    struct chunk_map *map = calloc(1, sizeof *map);
    if (!map)
        return NULL;
    map->words = calloc(chunks ? chunks : 1, sizeof *map->words);
    map->ever = calloc(chunks / 64 + 1, sizeof *map->ever);
    map->fresh = calloc(chunks ? chunks : 1, sizeof *map->fresh);
    if (!map->words || !map->ever || !map->fresh) {
        free(map->fresh);
        free(map->words);
        free(map->ever);
        free(map);
        return NULL;
    }
    map->chunks = chunks;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&map->stripes[i], NULL);
    return map;
}

void chunk_map_free(struct chunk_map *map)
{
    if (!map)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&map->stripes[i]);
    free(map->words);
    free(map->ever);
    free(map->fresh);
    free(map);
}

uint64_t chunk_map_ever_local(const struct chunk_map *map)
{
    return atomic_load(&map->ever_count);
}

uint64_t chunk_map_local(const struct chunk_map *map)
{
    return atomic_load(&map->local);
}

enum chunk_state chunk_map_state(const struct chunk_map *map, uint64_t chunk)
{
    return state_of(atomic_load(&map->words[chunk]));
}

uint32_t chunk_map_word(const struct chunk_map *map, uint64_t chunk)
{
    return atomic_load(&map->words[chunk]);
}

bool chunk_map_claim(struct chunk_map *map, uint64_t chunk, uint32_t *ticket)
{
    uint32_t word = atomic_load(&map->words[chunk]);
    if (state_of(word) != CHUNK_REMOTE)
        return false;
    uint32_t claimed = make(CHUNK_PULLING, word >> 2);
    if (!atomic_compare_exchange_strong(&map->words[chunk], &word, claimed))
        return false;
    *ticket = claimed;
    return true;
}

void chunk_map_release(struct chunk_map *map, uint64_t chunk, uint32_t ticket)
{
    uint32_t expected = ticket;
    if (atomic_compare_exchange_strong(&map->words[chunk], &expected,
                                       make(CHUNK_REMOTE, ticket >> 2)))
        atomic_fetch_add(&map->became_remote, 1);
}

uint64_t chunk_map_remote_events(const struct chunk_map *map)
{
    return atomic_load(&map->became_remote);
}

int chunk_map_commit(struct chunk_map *map, uint64_t chunk, uint32_t ticket,
                     int (*store)(void *arg), void *arg)
{
    pthread_mutex_t *stripe = &map->stripes[chunk % STRIPES];
    pthread_mutex_lock(stripe);
    int r = 1;
    if (atomic_load(&map->words[chunk]) == ticket) {
        r = store(arg);
        uint32_t expected = ticket;
        uint32_t next = make(r == 0 ? CHUNK_LOCAL : CHUNK_REMOTE, ticket >> 2);
        if (atomic_compare_exchange_strong(&map->words[chunk], &expected, next))
            atomic_fetch_add(r == 0 ? &map->local : &map->became_remote, 1);
        if (r == 0)
            note_local(map, chunk);
    }
    pthread_mutex_unlock(stripe);
    return r;
}

int chunk_map_commit_pages(struct chunk_map *map, uint64_t chunk, uint32_t seen, uint64_t pages,
                           uint64_t every, int (*store)(void *arg), void *arg)
{
    pthread_mutex_t *stripe = &map->stripes[chunk % STRIPES];
    LOCK_FOR_SCOPE(stripe);
    uint32_t word = atomic_load(&map->words[chunk]);
    if (chunk_word_is_local(word) || word >> 2 != seen >> 2)
        return 1;
    int r = store(arg);
    if (r != 0)
        return r; /* it may have written part: the pages stay stale */
    /* Stored before they count as current: a reader that sees the bits
     * reads the bytes. */
    uint64_t fresh = atomic_fetch_or(&map->fresh[chunk], pages) | pages;
    if ((fresh & every) == every && state_of(word) == CHUNK_REMOTE &&
        atomic_compare_exchange_strong(&map->words[chunk], &word, make(CHUNK_LOCAL, word >> 2))) {
        atomic_fetch_add(&map->local, 1);
        note_local(map, chunk);
    }
    return 0;
}

bool chunk_map_mark_remote(struct chunk_map *map, uint64_t chunk, uint64_t pages)
{
    uint64_t stale = pages ? pages : UINT64_MAX;
    pthread_mutex_t *stripe = &map->stripes[chunk % STRIPES];
    pthread_mutex_lock(stripe); /* one mark of a chunk at a time */
    uint32_t word = atomic_load(&map->words[chunk]);
    bool redirtied = false;
    for (;;) {
        enum chunk_state state = state_of(word);
        if (state == CHUNK_WRITTEN)
            break;
        /* The current pages are set before the chunk turns REMOTE: a claim
         * may follow at once. A LOCAL chunk is current but for PAGES. */
        if (state == CHUNK_LOCAL)
            atomic_store(&map->fresh[chunk], ~stale);
        else
            atomic_fetch_and(&map->fresh[chunk], ~stale);
        if (atomic_compare_exchange_weak(&map->words[chunk], &word,
                                         make(CHUNK_REMOTE, (word >> 2) + 1))) {
            atomic_fetch_add(&map->became_remote, 1);
            if (state == CHUNK_LOCAL)
                atomic_fetch_sub(&map->local, 1);
            redirtied = state != CHUNK_REMOTE;
            break;
        }
    }
    pthread_mutex_unlock(stripe);
    return redirtied;
}

uint64_t chunk_map_stale_pages(const struct chunk_map *map, uint64_t chunk)
{
    return ~atomic_load(&map->fresh[chunk]);
}

int chunk_map_overwrite(struct chunk_map *map, uint64_t chunk, int (*store)(void *arg), void *arg)
{
    pthread_mutex_t *stripe = &map->stripes[chunk % STRIPES];
    pthread_mutex_lock(stripe);
    uint32_t word = atomic_load(&map->words[chunk]);
    while (!atomic_compare_exchange_weak(&map->words[chunk], &word,
                                         make(CHUNK_WRITTEN, (word >> 2) + 1)))
        ;
    if (!chunk_state_is_local(state_of(word)))
        atomic_fetch_add(&map->local, 1);
    note_local(map, chunk);
    int r = store(arg);
    pthread_mutex_unlock(stripe);
    return r;
}

void chunk_map_mark_written(struct chunk_map *map, uint64_t chunk)
{
    uint32_t word = atomic_load(&map->words[chunk]);
    while (state_of(word) == CHUNK_LOCAL &&
           !atomic_compare_exchange_weak(&map->words[chunk], &word, make(CHUNK_WRITTEN, word >> 2)))
        ;
}

void chunk_map_set_local(struct chunk_map *map, uint64_t chunk)
{
    if (!chunk_state_is_local(state_of(atomic_exchange(&map->words[chunk], make(CHUNK_LOCAL, 0)))))
        atomic_fetch_add(&map->local, 1);
    note_local(map, chunk);
}
