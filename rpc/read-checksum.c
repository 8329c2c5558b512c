/* SPDX-License-Identifier: MIT */
/* The ReadAt checksum: a streaming XXH3-64. Zero ranges are fed from one
 * read-only block of zeroes, so a hole costs hashing, not memory: about
 * length / 10 GB/s. */
#include "read-checksum.h"

enum { ZERO_BLOCK = 64 << 10 };

static const uint8_t zero_block[ZERO_BLOCK];

void read_checksum_begin(struct read_checksum *c)
{
    XXH3_64bits_reset(&c->state);
}

void read_checksum_data(struct read_checksum *c, const void *data, size_t length)
{
    XXH3_64bits_update(&c->state, data, length);
}

void read_checksum_zeros(struct read_checksum *c, uint64_t length)
{
    while (length > 0) {
        size_t piece = length < ZERO_BLOCK ? (size_t)length : ZERO_BLOCK;
        XXH3_64bits_update(&c->state, zero_block, piece);
        length -= piece;
    }
}

uint64_t read_checksum_end(const struct read_checksum *c)
{
    return XXH3_64bits_digest(&c->state);
}
