/* SPDX-License-Identifier: MIT */
/* The checksum of a ReadAt reply (seeder.proto, ReadAtResponse.checksum):
 * XXH3-64 of the logical bytes of the range, zero ranges counted as zero
 * bytes, fed piece by piece in order as each side has them (the seeder
 * from what it read, the leecher from the reply's slices). */
#ifndef GODWIT_READ_CHECKSUM_H
#define GODWIT_READ_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>
#if defined(__x86_64__)
/* libxxhash's own run-time dispatch: XXH3 in AVX2 or AVX-512 where the CPU
 * has them (the library's plain entry points are built for SSE2; 5.5 vs
 * 15 GB/s on 1 MiB here). Same values; the names below become the
 * dispatching ones in every file that includes this header. */
#include <xxh_x86dispatch.h>
#endif

/* A checksum being computed; begin, feed the range in order, end. */
struct read_checksum {
    XXH3_state_t state;
};

void read_checksum_begin(struct read_checksum *c);
/* The next LENGTH bytes of the range are those at DATA. */
void read_checksum_data(struct read_checksum *c, const void *data, size_t length);
/* The next LENGTH bytes of the range read as zeroes. */
void read_checksum_zeros(struct read_checksum *c, uint64_t length);
uint64_t read_checksum_end(const struct read_checksum *c);

struct image_file;

/* The checksum of [OFFSET, OFFSET+LENGTH) of IMAGE as it reads now, read
 * through BUF (BUFLEN bytes) into *DIGEST: what Seeder.Digest reports per
 * chunk, and what the leecher's --verify compares it with. 0, or -1 with
 * errno (the read failed). */
int read_checksum_image(const struct image_file *image, uint64_t offset, uint64_t length,
                        uint8_t *buf, size_t buflen, uint64_t *digest);

#endif
