/* SPDX-License-Identifier: MIT */
/* The set of chunks the local app wrote: a bitmap of atomic words, so that
 * writers mark chunks without a lock and a reader can take the whole set
 * and clear it atomically word by word (a write racing with the take is
 * reported by this take or the next one, never lost). */
#ifndef GODWIT_DIRTY_SET_H
#define GODWIT_DIRTY_SET_H

#include <stdint.h>
#include <stddef.h>

struct dirty_set;

struct dirty_set *dirty_set_new(uint64_t chunks);
void dirty_set_free(struct dirty_set *set);

/* Marks chunks FIRST..LAST inclusive. Lock-free. Returns how many of them
 * were not marked before (for the dirty rate). */
uint64_t dirty_set_mark_range(struct dirty_set *set, uint64_t first, uint64_t last);

/* Number of chunks marked now (a snapshot). */
uint64_t dirty_set_count(const struct dirty_set *set);

/* Number of chunks marked in A or B (a snapshot). */
uint64_t dirty_set_count_union(const struct dirty_set *a, const struct dirty_set *b);

/* Moves every marked chunk into OUT (a set of the same size), clearing it
 * here: OUT |= set; set = 0, word by word with atomic exchange. */
void dirty_set_take(struct dirty_set *set, struct dirty_set *out);

/* OUT |= IN, without clearing IN. */
void dirty_set_merge(struct dirty_set *out, const struct dirty_set *in);

/* Clears every chunk. */
void dirty_set_clear(struct dirty_set *set);

/* Writes the indices of marked chunks in ascending order into INDICES (room
 * for dirty_set_count entries); returns how many. */
size_t dirty_set_list(const struct dirty_set *set, uint64_t *indices, size_t room);

#endif
