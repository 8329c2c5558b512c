/* SPDX-License-Identifier: MIT */
/* What background workers pull next. The leecher asks one struct
 * pull_order; it hands out, in this order: the rest of chunks a read
 * fetched only some pages of, the chunks its heuristic put first
 * (read-ahead after an on-demand read), the chunks the freeze reported,
 * then what the heuristic claims. A heuristic (a struct
 * pull_order_type) keeps its own state; adding one touches nothing else.
 * Not thread-safe: the leecher calls every function here with its lock
 * held (see leecher.h). */
#ifndef GODWIT_LEECHER_PULL_ORDER_H
#define GODWIT_LEECHER_PULL_ORDER_H

#include <stdint.h>

struct chunk_map;
struct chunk_queue;

/* A heuristic. Every callback gets SELF, what open returned. */
struct pull_order_type {
    const char *name;
    /* Its state for an image of CHUNKS chunks whose states MAP holds;
     * NULL with errno. */
    void *(*open)(struct chunk_map *map, uint64_t chunks);
    /* Claims up to MAX consecutive remote chunks (chunk_map_claim), stores
     * the first in *FIRST and the claims in TICKETS; returns how many, 0 if
     * none is remote (it is then not called again until a chunk turns
     * REMOTE). */
    unsigned (*claim)(void *self, unsigned max, uint64_t *first, uint32_t *tickets);
    /* The app just read CHUNK, which was missing: push onto FIRST the chunks
     * to pull before all others (a failed push only loses the priority). */
    void (*on_demand)(void *self, uint64_t chunk, struct chunk_queue *first);
    void (*close)(void *self);
};

/* Front to back from a cursor; after an on-demand read, the next few
 * chunks jump the queue (reads tend to go on where they stopped). */
extern const struct pull_order_type pull_order_sequential;

struct pull_order;

/* Opens TYPE over MAP; NULL with errno. */
struct pull_order *pull_order_open(const struct pull_order_type *type, struct chunk_map *map,
                                   uint64_t chunks);
void pull_order_close(struct pull_order *order);
/* The next work, as pull_order_type.claim returns it; a queued chunk comes
 * alone (count 1). */
unsigned pull_order_claim(struct pull_order *order, unsigned max, uint64_t *first,
                          uint32_t *tickets);
/* The app just read CHUNK, which was missing. */
void pull_order_on_demand(struct pull_order *order, uint64_t chunk);
/* A read fetched only some pages of CHUNK: the rest goes before anything
 * else (a read of its other pages would wait for it). */
void pull_order_put_rest(struct pull_order *order, uint64_t chunk);
/* The freeze reported CHUNK dirty: it goes before the heuristic's picks. */
void pull_order_put_first(struct pull_order *order, uint64_t chunk);

#endif
