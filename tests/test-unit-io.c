/* SPDX-License-Identifier: MIT */
/* Unit test: the data path's scatter-gather pieces. image_pwritev writes
 * iovecs (empty ones included) where they belong; rpc_response_iov points at
 * a byte range of a reply spread over several slices, and refuses ranges
 * outside the reply or needing more entries than allowed. image_allocate
 * allocates a range of a sparse image (where the file system can) without
 * changing its size or its bytes. */
#include "image-file.h"
#include "rpc-client.h"
#include "testlib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_pwritev(void)
{
    char *dir = test_make_dir("test-unit-io");
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/image", dir);
    struct image_file image;
    CHECK(image_open(&image, path, 1 << 20, err, sizeof err) == 0, "open: %s", err);
    char a[1000], b[3000], back[4000];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    struct iovec iov[] = {{a, sizeof a}, {NULL, 0}, {b, sizeof b}, {NULL, 0}};
    CHECK(image_pwritev(&image, iov, 4, 4096) == 0, "pwritev");
    CHECK(image_pread(&image, back, sizeof back, 4096) == 0, "pread");
    CHECK(memcmp(back, a, sizeof a) == 0 && memcmp(back + sizeof a, b, sizeof b) == 0,
          "the buffers landed one after the other");
    CHECK(image_pwrite(&image, a, 0, 0) == 0, "an empty write is no error");
    image_close(&image);
    test_cleanup_dir(dir);
    free(dir);
}

static uint64_t allocated_bytes(const struct image_file *image)
{
    struct stat st;
    CHECK(fstat(image->fd, &st) == 0, "fstat");
    return (uint64_t)st.st_blocks * 512;
}

static void test_allocate(void)
{
    char *dir = test_make_dir("test-unit-io-allocate");
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/image", dir);
    struct image_file image;
    CHECK(image_open(&image, path, 4 << 20, err, sizeof err) == 0, "open: %s", err);
    uint64_t before = allocated_bytes(&image);
    CHECK(image_allocate(&image, 0, 0) == 0, "an empty range is no error");
    CHECK(image_allocate(&image, 1 << 20, 1 << 20) == 0, "allocate: %s", strerror(errno));
    uint64_t after = allocated_bytes(&image);
    struct stat st;
    CHECK(fstat(image.fd, &st) == 0 && st.st_size == 4 << 20, "the size stays");
    static char back[1 << 20], zeroes[1 << 20];
    CHECK(image_pread(&image, back, sizeof back, 1 << 20) == 0 &&
              memcmp(back, zeroes, sizeof back) == 0,
          "an allocated range still reads as zeroes");
    /* tmpfs and ext4 allocate; a file system without fallocate does not,
     * and that is no error either. */
    if (after > before)
        CHECK(after - before >= 1 << 20 && after - before < 2 << 20,
              "allocated %llu bytes for 1 MiB", (unsigned long long)(after - before));
    char data[4096];
    memset(data, 'd', sizeof data);
    CHECK(image_pwrite(&image, data, sizeof data, (1 << 20) + 8192) == 0 &&
              image_pread(&image, back, sizeof data, (1 << 20) + 8192) == 0 &&
              memcmp(back, data, sizeof data) == 0,
          "a write into the allocated range reads back");
    image_close(&image);
    test_cleanup_dir(dir);
    free(dir);
}

static void test_reply_ranges(void)
{
    const char *parts[] = {"01234", "56789abcde", "fghijkl"};
    grpc_slice slices[3];
    for (int i = 0; i < 3; i++)
        slices[i] = grpc_slice_from_copied_string(parts[i]);
    struct rpc_response reply = {slices, 3, 22};
    struct iovec iov[4];
    CHECK(rpc_response_iov(&reply, 3, 10, iov, 4) == 2, "a range across two slices");
    CHECK(iov[0].iov_len == 2 && memcmp(iov[0].iov_base, "34", 2) == 0, "its first part");
    CHECK(iov[1].iov_len == 8 && memcmp(iov[1].iov_base, "56789abc", 8) == 0, "its second part");
    CHECK(rpc_response_iov(&reply, 0, 22, iov, 4) == 3, "the whole reply");
    CHECK(rpc_response_iov(&reply, 15, 7, iov, 4) == 1 &&
              memcmp(iov[0].iov_base, "fghijkl", 7) == 0,
          "the last slice exactly");
    CHECK(rpc_response_iov(&reply, 20, 3, iov, 4) == -1, "past the end");
    CHECK(rpc_response_iov(&reply, 23, 0, iov, 4) == -1, "starting past the end");
    CHECK(rpc_response_iov(&reply, 0, 22, iov, 2) == -1, "more entries than allowed");
    for (int i = 0; i < 3; i++)
        grpc_slice_unref(slices[i]);
}

int main(void)
{
    test_pwritev();
    test_allocate();
    test_reply_ranges();
    printf("test-unit-io: ok\n");
    return 0;
}
