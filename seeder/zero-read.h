/* SPDX-License-Identifier: MIT */
/* A ReadAt that leaves zeroes out (the request's allow_zero_ranges): the
 * range is cut at chunk boundaries; a piece the image holds as a hole
 * (SEEK_DATA/SEEK_HOLE) is not even read, a piece read whose bytes are all
 * zero is dropped from the data; both become zero ranges. */
#ifndef GODWIT_SEEDER_ZERO_READ_H
#define GODWIT_SEEDER_ZERO_READ_H

#include <grpc/slice.h>
#include <stdint.h>

#include "chunk.h"
#include "image-file.h"

/* Reads [OFFSET, OFFSET+LENGTH) of IMAGE into *SLICE, a whole
 * ReadAtResponse. 0, or -1 with errno (the read failed; nothing to unref). */
int zero_read(const struct image_file *image, const struct chunk_geometry *geo, uint64_t offset,
              uint32_t length, grpc_slice *slice);

#endif
