/* SPDX-License-Identifier: MIT */
/* The ReadAt checksum: a streaming XXH3-64. Zero ranges are fed from one
 * read-only block of zeroes, so a hole costs hashing, not memory: about
 * length / 10 GB/s. Also the digest of a range of an image file (Digest,
 * --verify). */
#include "read-checksum.h"

#include "image-file.h"

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

int read_checksum_image(const struct image_file *image, uint64_t offset, uint64_t length,
                        uint8_t *buf, size_t buflen, uint64_t *digest)
{
    struct read_checksum c;
    read_checksum_begin(&c);
    while (length > 0) {
        size_t piece = length < buflen ? (size_t)length : buflen;
        if (image_pread(image, buf, piece, offset) < 0)
            return -1;
        read_checksum_data(&c, buf, piece);
        offset += piece, length -= piece;
    }
    *digest = read_checksum_end(&c);
    return 0;
}
