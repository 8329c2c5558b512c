/* SPDX-License-Identifier: MIT */
/* Signal handling, random ids and address checks for the daemons. */
#include "daemon.h"

#include "log.h"

#include <malloc.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    sigaddset(set, SIGHUP);
}

void daemon_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Both daemons move data through buffers of a chunk or more (gRPC's read
 * slices, ReadAt replies). By default glibc mmaps and munmaps each one and
 * gives every thread its own arena, trimmed after each free, so buffers'
 * pages were faulted in and zeroed again and again: up to a quarter of the
 * leecher's CPU, and on VMs that hand free memory back to the host, far
 * more. A few arenas that keep 16 MiB each: the leecher pulled 1 GiB at
 * 1.7 GB/s instead of 0.9, with a lower peak RSS (docs/benchmarks.md). The
 * leecher then keeps fewer (leecher/main.c: bound_heap). */
static void keep_buffers_mapped(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_ARENA_MAX, 4);
}

void daemon_start(struct logger *log, const char *program, const char *log_format)
{
    keep_buffers_mapped();
    enum log_format format = LOG_TEXT;
    log_format_parse(log_format, &format);
    logger_init(log, program, format);
    daemon_block_signals();
}

int daemon_wait_signal(void)
{
    sigset_t set;
    int sig = 0;
    stop_signals(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

int daemon_wait_signal_ms(int ms)
{
    sigset_t set;
    stop_signals(&set);
    struct timespec timeout = {ms / 1000, (long)(ms % 1000) * 1000000};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &timeout);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            return 0;
        /* EINTR: another signal's handler ran; wait the whole time again. */
    }
}

int daemon_random_id(char *hex, size_t bytes)
{
    unsigned char raw[64];
    if (bytes > sizeof raw || getrandom(raw, bytes, 0) != (ssize_t)bytes)
        return -1;
    for (size_t i = 0; i < bytes; i++)
        sprintf(hex + 2 * i, "%02x", raw[i]);
    return 0;
}

bool daemon_address_is_local(const char *addr)
{
    static const char *local[] = {"unix:", "127.", "localhost:", "[::1]:"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strncmp(addr, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}
