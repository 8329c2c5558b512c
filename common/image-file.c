/* SPDX-License-Identifier: MIT */
/* Local image storage: open or create the file, whole-range I/O, zeroing,
 * and finding holes. */
#include "image-file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_or_create(const char *path, uint64_t size, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT || size == 0) {
        if (fd < 0)
            snprintf(err, errlen, "cannot open image %s: %s%s", path, strerror(errno),
                     errno == ENOENT ? " (give --size to create it)" : "");
        return fd;
    }
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create image %s: %s", path, strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        int saved = errno;
        snprintf(err, errlen, "cannot size image %s to %llu bytes: %s", path,
                 (unsigned long long)size, strerror(saved));
        close(fd);
        unlink(path);
        errno = saved;
        return -1;
    }
    return fd;
}

static int current_size(int fd, bool *is_block, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    *is_block = S_ISBLK(st.st_mode);
    if (*is_block)
        return ioctl(fd, BLKGETSIZE64, size);
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int image_open(struct image_file *image, const char *path, uint64_t size, char *err, size_t errlen)
{
    int fd = open_or_create(path, size, err, errlen);
    if (fd < 0)
        return -1;
    uint64_t actual;
    bool is_block;
    if (current_size(fd, &is_block, &actual) < 0) {
        snprintf(err, errlen, "image %s is not a regular file or block device", path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (actual == 0 || (size && actual != size)) {
        if (actual == 0)
            snprintf(err, errlen, "image %s is empty", path);
        else
            snprintf(err, errlen, "image %s is %llu bytes but --size says %llu", path,
                     (unsigned long long)actual, (unsigned long long)size);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    image->fd = fd;
    image->size = actual;
    image->is_block_device = is_block;
    return 0;
}

void image_close(struct image_file *image)
{
    if (image->fd >= 0)
        close(image->fd);
    image->fd = -1;
}

int image_pread(const struct image_file *image, void *buf, size_t count, uint64_t offset)
{
    char *p = buf;
    while (count > 0) {
        ssize_t r = pread(image->fd, p, count, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r, count -= (size_t)r, offset += (uint64_t)r;
    }
    return 0;
}

int image_pwrite(const struct image_file *image, const void *buf, size_t count, uint64_t offset)
{
    struct iovec iov = {(void *)buf, count};
    return image_pwritev(image, &iov, 1, offset);
}

int image_flush(const struct image_file *image)
{
    return image->is_block_device ? fsync(image->fd) : fdatasync(image->fd);
}

int image_allocate(const struct image_file *image, uint64_t count, uint64_t offset)
{
    if (image->is_block_device || count == 0)
        return 0;
    int r;
    do
        r = fallocate(image->fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)count);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
        return 0; /* cannot: the write allocates as it always did */
    return r;
}

static int write_zeroes(const struct image_file *image, uint64_t count, uint64_t offset)
{
    static const size_t block = 1 << 20;
    char *zeroes = calloc(1, block);
    if (!zeroes)
        return -1;
    int r = 0;
    while (r == 0 && count > 0) {
        size_t n = count < block ? (size_t)count : block;
        r = image_pwrite(image, zeroes, n, offset);
        count -= n, offset += n;
    }
    free(zeroes);
    return r;
}

int image_pwritev(const struct image_file *image, struct iovec *iov, int iovcnt, uint64_t offset)
{
    for (;;) {
        while (iovcnt > 0 && iov->iov_len == 0)
            iov++, iovcnt--;
        if (iovcnt == 0)
            return 0;
        ssize_t r = pwritev(image->fd, iov, iovcnt, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENOSPC;
            return -1;
        }
        offset += (uint64_t)r;
        for (size_t done = (size_t)r; done > 0; iov++, iovcnt--) { /* skip what was written */
            size_t take = done < iov->iov_len ? done : iov->iov_len;
            iov->iov_base = (char *)iov->iov_base + take;
            iov->iov_len -= take;
            done -= take;
            if (iov->iov_len > 0)
                break;
        }
    }
}

int image_zero(const struct image_file *image, uint64_t count, uint64_t offset)
{
    int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    if (!image->is_block_device && fallocate(image->fd, mode, (off_t)offset, (off_t)count) == 0)
        return 0;
    return write_zeroes(image, count, offset);
}

/* The run at OFFSET (< end): a hole or data, and its LENGTH up to END. The
 * lseeks move the shared file offset, which no I/O here uses (all of it is
 * pread/pwrite). */
static int next_run(const struct image_file *image, uint64_t offset, uint64_t end, bool *hole,
                    uint64_t *length)
{
    *hole = false, *length = end - offset;
    if (image->is_block_device)
        return 0;
    off_t data = lseek(image->fd, (off_t)offset, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) /* no data after OFFSET: a hole to the end */
            return *hole = true, 0;
        return errno == EINVAL || errno == EOPNOTSUPP ? 0 : -1; /* cannot tell: data */
    }
    if ((uint64_t)data > offset) {
        *hole = true;
        *length = ((uint64_t)data < end ? (uint64_t)data : end) - offset;
        return 0;
    }
    off_t after = lseek(image->fd, (off_t)offset, SEEK_HOLE);
    if (after < 0)
        return errno == ENXIO ? 0 : -1; /* truncated meanwhile: call it data */
    if ((uint64_t)after > offset && (uint64_t)after < end)
        *length = (uint64_t)after - offset;
    return 0;
}

int image_describe(const struct image_file *image, uint64_t offset, uint64_t end,
                   int (*add)(void *arg, uint64_t offset, uint64_t length, bool hole), void *arg)
{
    while (offset < end) {
        bool hole;
        uint64_t length;
        if (next_run(image, offset, end, &hole, &length) < 0)
            return -1;
        int r = add(arg, offset, length, hole);
        if (r != 0)
            return r;
        offset += length;
    }
    return 0;
}
