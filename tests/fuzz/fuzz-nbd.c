/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the NBD server's handshake and request parser. Each
 * input is what a client sends after the server's greeting; it goes to a
 * real nbd_server (memory backend) over a socketpair, and the server must
 * neither crash, leak, nor hang (the fuzzer's timeout catches hangs).
 * Inputs that start with a valid handshake (the seeds do) reach the
 * transmission phase, so requests are fuzzed too: simple and structured
 * replies, metadata contexts and block status (the backend reports each
 * all-zero 64 KiB block as a hole). */
#include "nbd-server.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { SIZE = 1 << 20 };

static int mem_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    memcpy(buf, (char *)opaque + offset, count);
    return 0;
}

static int mem_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    (void)fua;
    memcpy((char *)opaque + offset, buf, count);
    return 0;
}

static int mem_trim(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    (void)fua;
    memset((char *)opaque + offset, 0, count);
    return 0;
}

static int mem_flush(void *opaque)
{
    (void)opaque;
    return 0;
}

static int mem_extents(void *opaque, uint32_t count, uint64_t offset, struct nbd_extents *extents)
{
    static const char zeroes[65536];
    int r = 0;
    for (uint64_t block = offset & ~65535ull; r == 0 && block < offset + count; block += 65536) {
        bool zero = memcmp((char *)opaque + block, zeroes, sizeof zeroes) == 0;
        r = nbd_extents_add(extents, block, sizeof zeroes,
                            zero ? NBD_EXTENT_HOLE | NBD_EXTENT_ZERO : NBD_EXTENT_DATA);
    }
    return r < 0 ? -1 : 0;
}

/* Sends DATA and drains the server's answers until it closes the socket. */
static void converse(int fd, const uint8_t *data, size_t size)
{
    size_t sent = 0;
    char sink[65536];
    bool shut = false;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN | (sent < size ? POLLOUT : 0), 0};
        int ready = poll(&pfd, 1, 5000);
        if (ready < 0 && errno == EINTR)
            continue; /* libFuzzer's timer signal */
        if (ready <= 0)
            break;
        if (pfd.revents & POLLIN) {
            if (recv(fd, sink, sizeof sink, 0) <= 0)
                break;
        } else if (pfd.revents & POLLOUT) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0)
                break;
            sent += (size_t)n;
        } else {
            break;
        }
        if (sent == size && !shut) {
            shutdown(fd, SHUT_WR); /* end of input: the server sees EOF */
            shut = true;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *image; /* the backend's bytes, reused across inputs */
    if (!image)
        image = calloc(1, SIZE);
    struct nbd_backend backend = {.opaque = image,
                                  .size = SIZE,
                                  .pread = mem_pread,
                                  .pwrite = mem_pwrite,
                                  .flush = mem_flush,
                                  .trim = mem_trim,
                                  .extents = mem_extents};
    struct nbd_server_config config = {
        .export_name = "fuzz", .threads_per_connection = 2, .max_request = 1 << 20};
    char err[256];
    struct nbd_server *server = nbd_server_start(&config, &backend, err, sizeof err);
    int sv[2];
    if (!server || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    if (nbd_server_add_fd(server, sv[0]) < 0)
        abort();
    char greeting[18];
    ssize_t got;
    while ((got = recv(sv[1], greeting, sizeof greeting, MSG_WAITALL)) < 0 && errno == EINTR)
        ;
    if (got != sizeof greeting)
        abort();
    converse(sv[1], data, size);
    close(sv[1]);
    nbd_server_stop(server);
    return 0;
}
