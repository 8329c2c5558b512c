/* SPDX-License-Identifier: MIT */
/* zstd for ReadAt data: the seeder's compressor (a pool of contexts its
 * ReadAt threads share) and the leecher's decoder, which accepts exactly
 * one whole frame that decodes to exactly the length the reply promised. */
#ifndef GODWIT_COMPRESSION_H
#define GODWIT_COMPRESSION_H

#include <stddef.h>
#include <sys/uio.h>

struct compressor;

/* A compressor at zstd LEVEL (1, or negative: faster). NULL with errno
 * ENOMEM. Thread-safe: each call takes a context from the pool. */
struct compressor *compressor_new(int level);
void compressor_free(struct compressor *c);

/* The room compressing LEN bytes may need, at most. */
size_t compressor_bound(size_t len);

/* Compresses the LEN bytes at IN into OUT (CAP bytes, compressor_bound(LEN)
 * or more) as one frame with its content size and checksum. Returns its length, or 0 if it would
 * not save at least a sixteenth of LEN (random data: send it as it is), or on error (errno ENOMEM,
 * EIO). */
size_t compressor_run(struct compressor *c, const void *in, size_t len, void *out, size_t cap);

/* Decodes the frame held in the N pieces of IOV into OUT, which must come
 * out exactly LEN bytes long. 0, or -1 with errno EBADMSG (not one whole
 * frame of LEN bytes: corrupt, its checksum wrong, cut short, followed by
 * more) or ENOMEM; OUT then holds garbage. */
int decompress_iov(const struct iovec *iov, int n, void *out, size_t len);

#endif
