/* SPDX-License-Identifier: MIT */
/* The set of chunks the local app wrote: a bitmap of atomic words, so that
 * writers mark chunks without a lock and a reader can take the whole set
 * and clear it atomically word by word (a write racing with the take is
 * reported by this take or the next one, never lost). Beside each chunk's
 * bit, a mask of the pages written in it (a page is 1/64 of a chunk), so
 * that a leecher re-reads only those; DIRTY_ALL_PAGES is the whole chunk. */
#ifndef GODWIT_DIRTY_SET_H
#define GODWIT_DIRTY_SET_H

#include <stdint.h>
#include <stddef.h>

struct dirty_set;

struct dirty_set *dirty_set_new(uint64_t chunks);
void dirty_set_free(struct dirty_set *set);

#define DIRTY_ALL_PAGES UINT64_MAX

/* Marks chunks FIRST..LAST inclusive: pages FIRST_PAGES of FIRST,
 * LAST_PAGES of LAST (if it is another chunk), all pages of those between.
 * Lock-free. Returns how many of the chunks were not marked before (for
 * the dirty rate). */
uint64_t dirty_set_mark_pages(struct dirty_set *set, uint64_t first, uint64_t last,
                              uint64_t first_pages, uint64_t last_pages);

/* Marks chunks FIRST..LAST inclusive, every page of them. */
uint64_t dirty_set_mark_range(struct dirty_set *set, uint64_t first, uint64_t last);

/* Number of chunks marked now (a snapshot). */
uint64_t dirty_set_count(const struct dirty_set *set);

/* Number of chunks marked in A or B (a snapshot). */
uint64_t dirty_set_count_union(const struct dirty_set *a, const struct dirty_set *b);

/* Moves every marked chunk into OUT (a set of the same size), clearing it
 * here: OUT |= set; set = 0, word by word with atomic exchange, and the
 * page masks of the chunks taken with them. A chunk whose pages a racing
 * take already moved comes with an empty mask: the whole chunk. */
void dirty_set_take(struct dirty_set *set, struct dirty_set *out);

/* OUT |= IN, without clearing IN. */
void dirty_set_merge(struct dirty_set *out, const struct dirty_set *in);

/* Clears every chunk. */
void dirty_set_clear(struct dirty_set *set);

/* Writes the indices of marked chunks in ascending order into INDICES (room
 * for dirty_set_count entries), and their page masks into PAGES unless it
 * is NULL (0 after a race, or every bit: the whole chunk); returns how
 * many. */
size_t dirty_set_list(const struct dirty_set *set, uint64_t *indices, uint64_t *pages, size_t room);

#endif
