/* SPDX-License-Identifier: MIT */
/* Socket I/O for the NBD server: whole-buffer reads and writes (writes never
 * raise SIGPIPE), skipping a payload, and the server's one logging helper. */
#include "internal.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

void nbd_log(struct nbd_server *server, int level, const char *fmt, ...)
{
    if (!server->config.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(server->config.log, (enum log_level)level, "%s", msg);
}

int nbd_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

static int send_all(int fd, const void *buf, size_t len, int flags)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | flags);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

int nbd_write_full(int fd, const void *buf, size_t len)
{
    return send_all(fd, buf, len, 0);
}

int nbd_write_more(int fd, const void *buf, size_t len)
{
    return send_all(fd, buf, len, MSG_MORE);
}

int nbd_discard(int fd, uint64_t len)
{
    char buf[65536];
    while (len > 0) {
        size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
        if (nbd_read_full(fd, buf, n) < 0)
            return -1;
        len -= n;
    }
    return 0;
}
