/* SPDX-License-Identifier: MIT */
/* A tiny NBD server for tests and benchmarks: serves FILE over a unix
 * socket with a plain file backend until SIGTERM or SIGINT.
 *   nbd-serve-file FILE SOCKET [--read-only] */
#include "log.h"
#include "nbd-server.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_pread(void *opaque, void *buf, uint32_t count, uint64_t offset)
{
    int fd = *(int *)opaque;
    for (uint32_t done = 0; done < count;) {
        ssize_t n = pread(fd, (char *)buf + done, count - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? (errno = EIO, -1) : -1;
        done += (uint32_t)n;
    }
    return 0;
}

static int file_flush(void *opaque)
{
    return fdatasync(*(int *)opaque);
}

static int file_pwrite(void *opaque, const void *buf, uint32_t count, uint64_t offset, bool fua)
{
    int fd = *(int *)opaque;
    for (uint32_t done = 0; done < count;) {
        ssize_t n = pwrite(fd, (const char *)buf + done, count - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        done += (uint32_t)n;
    }
    return fua ? file_flush(opaque) : 0;
}

static int file_trim(void *opaque, uint32_t count, uint64_t offset, bool fua)
{
    int fd = *(int *)opaque;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, count) < 0 &&
        errno != EOPNOTSUPP)
        return -1;
    return fua ? file_flush(opaque) : 0; /* a trim is advisory: unsupported is fine */
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc == 4 && strcmp(argv[3], "--read-only") != 0) || argc > 4) {
        fprintf(stderr, "usage: nbd-serve-file FILE SOCKET [--read-only]\n");
        return 2;
    }
    bool read_only = argc == 4;
    int fd = open(argv[1], (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "nbd-serve-file: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    struct logger log;
    logger_init(&log, "nbd-serve-file", LOG_TEXT);
    struct nbd_backend backend = {.opaque = &fd,
                                  .size = (uint64_t)st.st_size,
                                  .read_only = read_only,
                                  .pread = file_pread,
                                  .pwrite = file_pwrite,
                                  .flush = file_flush,
                                  .trim = file_trim};
    struct nbd_server_config config = {.unix_path = argv[2], .log = &log};

    /* Block the stop signals in every thread; main waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    char err[256];
    struct nbd_server *server = nbd_server_start(&config, &backend, err, sizeof err);
    if (!server) {
        fprintf(stderr, "nbd-serve-file: %s\n", err);
        close(fd);
        return 1;
    }
    int sig;
    sigwait(&stop, &sig);
    nbd_server_stop(server);
    close(fd);
    pthread_mutex_destroy(&log.lock);
    return 0;
}
