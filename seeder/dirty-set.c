/* SPDX-License-Identifier: MIT */
/* The dirty set: one bit per chunk in atomic 64-bit words, and one page
 * mask per chunk. Writers OR a chunk's pages first, then its bit;
 * dirty_set_take swaps each bit word with zero, then the mask of each chunk
 * it took, so a bit set concurrently lands either in this take or stays
 * for the next one, and a page ORed concurrently goes with one of them
 * (a take that finds a chunk's mask already taken reports it whole). */
#include "dirty-set.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct dirty_set {
    uint64_t chunks;
    size_t words;
    _Atomic uint64_t *pages; /* per chunk; owned by atomics, like bits */
    _Atomic uint64_t bits[]; /* owned by atomics: any thread may set or swap */
};

struct dirty_set *dirty_set_new(uint64_t chunks)
{
    size_t words = (size_t)((chunks + 63) / 64);
    struct dirty_set *set = calloc(1, sizeof *set + words * sizeof(uint64_t));
    if (!set)
        return NULL;
    set->pages = calloc(chunks ? chunks : 1, sizeof *set->pages);
    if (!set->pages) {
        free(set);
        return NULL;
    }
    set->chunks = chunks;
    set->words = words;
    return set;
}

void dirty_set_free(struct dirty_set *set)
{
    if (set)
        free(set->pages);
    free(set);
}

/* Mask of bits FROM..TO (inclusive, 0..63) in one word. */
static uint64_t bit_mask(unsigned from, unsigned to)
{
    uint64_t high = to == 63 ? ~0ull : (1ull << (to + 1)) - 1;
    return high & ~((1ull << from) - 1);
}

/* ORs the pages of chunks FIRST..LAST (LAST < chunks). */
static void mark_pages(struct dirty_set *set, uint64_t first, uint64_t last, uint64_t first_pages,
                       uint64_t last_pages)
{
    for (uint64_t chunk = first; chunk <= last; chunk++) {
        uint64_t pages = chunk == first  ? first_pages
                         : chunk == last ? last_pages
                                         : DIRTY_ALL_PAGES;
        atomic_fetch_or_explicit(&set->pages[chunk], pages, memory_order_release);
    }
}

uint64_t dirty_set_mark_pages(struct dirty_set *set, uint64_t first, uint64_t last,
                              uint64_t first_pages, uint64_t last_pages)
{
    uint64_t fresh = 0;
    if (last >= set->chunks)
        last = set->chunks - 1, last_pages = DIRTY_ALL_PAGES;
    /* Pages before the bit: a take that sees the bit sees the pages. */
    mark_pages(set, first, last, first_pages, last_pages);
    for (uint64_t word = first / 64; word <= last / 64; word++) {
        unsigned from = word == first / 64 ? (unsigned)(first % 64) : 0;
        unsigned to = word == last / 64 ? (unsigned)(last % 64) : 63;
        uint64_t mask = bit_mask(from, to);
        uint64_t old = atomic_fetch_or_explicit(&set->bits[word], mask, memory_order_acq_rel);
        fresh += (uint64_t)__builtin_popcountll(mask & ~old);
    }
    return fresh;
}

uint64_t dirty_set_mark_range(struct dirty_set *set, uint64_t first, uint64_t last)
{
    return dirty_set_mark_pages(set, first, last, DIRTY_ALL_PAGES, DIRTY_ALL_PAGES);
}

uint64_t dirty_set_count(const struct dirty_set *set)
{
    uint64_t count = 0;
    for (size_t i = 0; i < set->words; i++)
        count += (uint64_t)__builtin_popcountll(
            atomic_load_explicit(&set->bits[i], memory_order_acquire));
    return count;
}

uint64_t dirty_set_count_union(const struct dirty_set *a, const struct dirty_set *b)
{
    uint64_t count = 0;
    for (size_t i = 0; i < a->words; i++)
        count +=
            (uint64_t)__builtin_popcountll(atomic_load_explicit(&a->bits[i], memory_order_acquire) |
                                           atomic_load_explicit(&b->bits[i], memory_order_acquire));
    return count;
}

/* ORs the masks of the chunks in BITS (word WORD) from SET into OUT;
 * TAKE: clears them in SET. A chunk with no pages left is whole. */
static void move_pages(struct dirty_set *set, struct dirty_set *out, size_t word, uint64_t bits,
                       bool take)
{
    for (; bits; bits &= bits - 1) {
        uint64_t chunk = (uint64_t)word * 64 + (uint64_t)__builtin_ctzll(bits);
        uint64_t pages = take
                             ? atomic_exchange_explicit(&set->pages[chunk], 0, memory_order_acq_rel)
                             : atomic_load_explicit(&set->pages[chunk], memory_order_acquire);
        atomic_fetch_or_explicit(&out->pages[chunk], pages ? pages : DIRTY_ALL_PAGES,
                                 memory_order_release);
    }
}

void dirty_set_take(struct dirty_set *set, struct dirty_set *out)
{
    for (size_t i = 0; i < set->words; i++) {
        uint64_t bits = atomic_exchange_explicit(&set->bits[i], 0, memory_order_acq_rel);
        if (!bits)
            continue;
        move_pages(set, out, i, bits, true);
        atomic_fetch_or_explicit(&out->bits[i], bits, memory_order_release);
    }
}

void dirty_set_merge(struct dirty_set *out, const struct dirty_set *in)
{
    for (size_t i = 0; i < in->words; i++) {
        uint64_t bits = atomic_load_explicit(&in->bits[i], memory_order_acquire);
        if (!bits)
            continue;
        move_pages((struct dirty_set *)in, out, i, bits, false);
        atomic_fetch_or_explicit(&out->bits[i], bits, memory_order_release);
    }
}

void dirty_set_clear(struct dirty_set *set)
{
    for (size_t i = 0; i < set->words; i++) {
        uint64_t bits = atomic_exchange_explicit(&set->bits[i], 0, memory_order_acq_rel);
        for (; bits; bits &= bits - 1)
            atomic_store_explicit(&set->pages[(uint64_t)i * 64 + (uint64_t)__builtin_ctzll(bits)],
                                  0, memory_order_release);
    }
}

size_t dirty_set_list(const struct dirty_set *set, uint64_t *indices, uint64_t *pages, size_t room)
{
    size_t n = 0;
    for (size_t i = 0; i < set->words && n < room; i++) {
        uint64_t bits = atomic_load_explicit(&set->bits[i], memory_order_acquire);
        while (bits && n < room) {
            uint64_t chunk = (uint64_t)i * 64 + (uint64_t)__builtin_ctzll(bits);
            if (pages)
                pages[n] = atomic_load_explicit(&set->pages[chunk], memory_order_acquire);
            indices[n++] = chunk;
            bits &= bits - 1;
        }
    }
    return n;
}
