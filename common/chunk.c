/* SPDX-License-Identifier: MIT */
/* Chunk geometry set-up; the arithmetic itself is inline in chunk.h. */
#include "chunk.h"

#include <errno.h>

int chunk_geometry_init(struct chunk_geometry *geo, uint64_t size, uint32_t chunk_size)
{
    if (chunk_size < 4096 || chunk_size > (64u << 20) || (chunk_size & (chunk_size - 1)) != 0) {
        errno = EINVAL;
        return -1;
    }
    geo->size = size;
    geo->chunk_size = chunk_size;
    geo->shift = (uint32_t)__builtin_ctz(chunk_size);
    geo->chunks = (size + chunk_size - 1) >> geo->shift;
    return 0;
}
