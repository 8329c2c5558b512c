/* SPDX-License-Identifier: MIT */
/* The dirty set: one bit per chunk in atomic 64-bit words. Writers set bits
 * with atomic OR; dirty_set_take swaps each word with zero, so a bit set
 * concurrently lands either in this take or stays for the next one. */
#include "dirty-set.h"

#include <stdatomic.h>
#include <stdlib.h>

struct dirty_set {
    uint64_t chunks;
    size_t words;
    _Atomic uint64_t bits[]; /* owned by atomics: any thread may set or swap */
};

struct dirty_set *dirty_set_new(uint64_t chunks)
{
    size_t words = (size_t)((chunks + 63) / 64);
    struct dirty_set *set = calloc(1, sizeof *set + words * sizeof(uint64_t));
    if (!set)
        return NULL;
    set->chunks = chunks;
    set->words = words;
    return set;
}

void dirty_set_free(struct dirty_set *set)
{
    free(set);
}

/* Mask of bits FROM..TO (inclusive, 0..63) in one word. */
static uint64_t bit_mask(unsigned from, unsigned to)
{
    uint64_t high = to == 63 ? ~0ull : (1ull << (to + 1)) - 1;
    return high & ~((1ull << from) - 1);
}

uint64_t dirty_set_mark_range(struct dirty_set *set, uint64_t first, uint64_t last)
{
    uint64_t fresh = 0;
    if (last >= set->chunks)
        last = set->chunks - 1;
    for (uint64_t word = first / 64; word <= last / 64; word++) {
        unsigned from = word == first / 64 ? (unsigned)(first % 64) : 0;
        unsigned to = word == last / 64 ? (unsigned)(last % 64) : 63;
        uint64_t mask = bit_mask(from, to);
        uint64_t old = atomic_fetch_or_explicit(&set->bits[word], mask, memory_order_acq_rel);
        fresh += (uint64_t)__builtin_popcountll(mask & ~old);
    }
    return fresh;
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

void dirty_set_take(struct dirty_set *set, struct dirty_set *out)
{
    for (size_t i = 0; i < set->words; i++) {
        uint64_t bits = atomic_exchange_explicit(&set->bits[i], 0, memory_order_acq_rel);
        if (bits)
            atomic_fetch_or_explicit(&out->bits[i], bits, memory_order_release);
    }
}

void dirty_set_merge(struct dirty_set *out, const struct dirty_set *in)
{
    for (size_t i = 0; i < in->words; i++) {
        uint64_t bits = atomic_load_explicit(&in->bits[i], memory_order_acquire);
        if (bits)
            atomic_fetch_or_explicit(&out->bits[i], bits, memory_order_release);
    }
}

void dirty_set_clear(struct dirty_set *set)
{
    for (size_t i = 0; i < set->words; i++)
        atomic_store_explicit(&set->bits[i], 0, memory_order_release);
}

size_t dirty_set_list(const struct dirty_set *set, uint64_t *indices, size_t room)
{
    size_t n = 0;
    for (size_t i = 0; i < set->words && n < room; i++) {
        uint64_t bits = atomic_load_explicit(&set->bits[i], memory_order_acquire);
        while (bits && n < room) {
            indices[n++] = (uint64_t)i * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
        }
    }
    return n;
}
