/* SPDX-License-Identifier: MIT */
/* Chunk arithmetic: which chunks a byte range touches, and how a range
 * splits at chunk borders. Chunk sizes are powers of two. */
#ifndef GODWIT_CHUNK_H
#define GODWIT_CHUNK_H

#include <stdbool.h>
#include <stdint.h>

/* The largest ReadAt a seeder serves (Info's max_read_length): a chunk
 * must fit in one, so it bounds --chunk-size and the leecher's --batch. */
#define CHUNK_MAX_READ (16u << 20)

struct chunk_geometry {
    uint64_t size;       /* image size in bytes */
    uint32_t chunk_size; /* a power of two */
    uint32_t shift;      /* log2(chunk_size) */
    uint64_t chunks;     /* number of chunks; the last may be short */
};

/* Fills GEO; returns -1 (errno EINVAL) unless chunk_size is a power of two
 * between 4 KiB and 64 MiB. */
int chunk_geometry_init(struct chunk_geometry *geo, uint64_t size, uint32_t chunk_size);

static inline uint64_t chunk_index(const struct chunk_geometry *geo, uint64_t offset)
{
    return offset >> geo->shift;
}

static inline uint64_t chunk_offset(const struct chunk_geometry *geo, uint64_t index)
{
    return index << geo->shift;
}

/* Length of chunk INDEX: chunk_size, or less for the last chunk. */
static inline uint32_t chunk_length(const struct chunk_geometry *geo, uint64_t index)
{
    uint64_t start = chunk_offset(geo, index);
    uint64_t left = geo->size - start;
    return left < geo->chunk_size ? (uint32_t)left : geo->chunk_size;
}

/* True if [offset, offset+count) lies inside the image (count may be 0). */
static inline bool chunk_range_valid(const struct chunk_geometry *geo, uint64_t offset,
                                     uint64_t count)
{
    return offset <= geo->size && count <= geo->size - offset;
}

/* First and last chunk index touched by a non-empty range. */
static inline void chunk_span(const struct chunk_geometry *geo, uint64_t offset, uint64_t count,
                              uint64_t *first, uint64_t *last)
{
    *first = chunk_index(geo, offset);
    *last = chunk_index(geo, offset + count - 1);
}

/* A chunk's pages: 64 of chunk_size / 64 bytes each (4 KiB for 256 KiB
 * chunks), one bit each in a mask; the last chunk may have fewer. */
#define CHUNK_PAGES 64

static inline uint32_t chunk_page_size(const struct chunk_geometry *geo)
{
    return geo->chunk_size / CHUNK_PAGES;
}

/* The mask of the pages of chunk INDEX that a non-empty range touches (0
 * if it misses the chunk). */
static inline uint64_t chunk_page_mask(const struct chunk_geometry *geo, uint64_t index,
                                       uint64_t offset, uint64_t count)
{
    uint64_t start = chunk_offset(geo, index), end = start + chunk_length(geo, index);
    uint64_t from = offset > start ? offset : start;
    uint64_t to = offset + count < end ? offset + count : end;
    if (from >= to)
        return 0;
    unsigned page_shift = geo->shift - 6;
    unsigned first = (unsigned)((from - start) >> page_shift);
    unsigned last = (unsigned)((to - 1 - start) >> page_shift);
    uint64_t high = last == 63 ? UINT64_MAX : (1ull << (last + 1)) - 1;
    return high & ~((1ull << first) - 1);
}

/* True if the range covers chunk INDEX completely. */
static inline bool chunk_fully_covered(const struct chunk_geometry *geo, uint64_t index,
                                       uint64_t offset, uint64_t count)
{
    uint64_t start = chunk_offset(geo, index);
    return offset <= start && offset + count >= start + chunk_length(geo, index);
}

#endif
