/* SPDX-License-Identifier: MIT */
/* Where background pulls look next: a pluggable heuristic. The leecher
 * always serves on-demand reads and the dirty list of the freeze first;
 * a pull order decides the rest, and hears about on-demand reads so it can
 * pull near them first. */
#ifndef GODWIT_LEECHER_PULL_ORDER_H
#define GODWIT_LEECHER_PULL_ORDER_H

#include <stdint.h>

struct leecher;

struct pull_order {
    const char *name;
    /* Claims up to MAX consecutive remote chunks (chunk_map_claim) and
     * stores the first in *FIRST and the claims in TICKETS; returns how
     * many, 0 if none is remote (it is then not called again until a
     * chunk turns REMOTE). Called with leecher->lock held. */
    unsigned (*claim)(struct leecher *l, unsigned max, uint64_t *first, uint32_t *tickets);
    /* The app just read CHUNK, which was missing. Called with the lock held. */
    void (*on_demand)(struct leecher *l, uint64_t chunk);
};

/* Front to back from a cursor; after an on-demand read, the next few
 * chunks jump the queue (reads tend to go on where they stopped). */
extern const struct pull_order pull_order_sequential;

#endif
