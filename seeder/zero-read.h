/* SPDX-License-Identifier: MIT */
/* A ReadAt that leaves zeroes out (the request's allow_zero_ranges): the
 * range is cut at chunk boundaries; a piece the image holds as a hole
 * (SEEK_DATA/SEEK_HOLE) is not even read, a piece read whose bytes are all
 * zero is dropped from the data; both become zero ranges. The data kept may
 * then be compressed (the request's accept_encoding), when that makes it
 * smaller. */
#ifndef GODWIT_SEEDER_ZERO_READ_H
#define GODWIT_SEEDER_ZERO_READ_H

#include <grpc/slice.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "image-file.h"

struct compressor;

/* What the request allows. */
struct read_mode {
    bool zero_ranges;              /* allow_zero_ranges */
    struct compressor *compressor; /* accept_encoding zstd; NULL: send data as it is */
    bool checksum;                 /* want_checksum: XXH3-64 of the logical bytes */
};

/* What the reply's data came to: its bytes before and after encoding. */
struct read_sizes {
    size_t data, sent;
};

/* Reads [OFFSET, OFFSET+LENGTH) of IMAGE into *SLICE, a whole
 * ReadAtResponse, as MODE allows (with the checksum of the range's
 * logical bytes, before any compression, if asked); *SIZES says what its data came to. 0, or
 * -1 with errno (the read failed; nothing to unref). */
int zero_read(const struct image_file *image, const struct chunk_geometry *geo, uint64_t offset,
              uint32_t length, const struct read_mode *mode, grpc_slice *slice,
              struct read_sizes *sizes);

#endif
