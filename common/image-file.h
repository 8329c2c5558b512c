/* SPDX-License-Identifier: MIT */
/* An image on local storage: a regular file (created sparse on request) or
 * a block device, with whole-range pread/pwrite that retry short transfers,
 * and where its holes are. */
#ifndef GODWIT_IMAGE_FILE_H
#define GODWIT_IMAGE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct image_file {
    int fd;
    uint64_t size;
    bool is_block_device;
};

/* Opens PATH read-write. If it does not exist and SIZE > 0, creates it
 * sparse with that size; if it exists and SIZE > 0, its size must match.
 * Returns 0, or -1 with errno and one sentence in ERR. */
int image_open(struct image_file *image, const char *path, uint64_t size, char *err, size_t errlen);
void image_close(struct image_file *image);

/* Whole-range I/O: 0, or -1 with errno (EIO on an unexpected end of file). */
int image_pread(const struct image_file *image, void *buf, size_t count, uint64_t offset);
int image_pwrite(const struct image_file *image, const void *buf, size_t count, uint64_t offset);
/* Writes the IOVCNT buffers of IOV (which it may change) in order from OFFSET. */
int image_pwritev(const struct image_file *image, struct iovec *iov, int iovcnt, uint64_t offset);
int image_flush(const struct image_file *image);

/* Allocates [offset, offset+count) of a regular file that is about to be
 * written there (fallocate, keeping the size), so the file system writes
 * into allocated blocks: ext4's delayed allocation otherwise reserves
 * space and records a delayed extent for every 4 KiB block as it is
 * written (a 1 GiB write in 256 KiB pieces: 0.13 s of system time instead
 * of 0.19, writeback as long). Nothing for block devices and file systems
 * without fallocate. 0, or -1 with errno (ENOSPC: no room). */
int image_allocate(const struct image_file *image, uint64_t count, uint64_t offset);

/* Makes [offset, offset+count) read as zeroes: punches a hole where the
 * file system can, writes zeroes where it cannot. */
int image_zero(const struct image_file *image, uint64_t count, uint64_t offset);

/* Walks [offset, end) in order, calling ADD(ARG, offset, length, hole) for
 * each run of data or hole (SEEK_DATA/SEEK_HOLE); a hole reads as zeroes.
 * Block devices and file systems that cannot tell are all data. ADD returns
 * 0 to go on, non-zero to stop (then so does this, with that value); -1
 * with errno if the file cannot be asked. */
int image_describe(const struct image_file *image, uint64_t offset, uint64_t end,
                   int (*add)(void *arg, uint64_t offset, uint64_t length, bool hole), void *arg);

#endif
