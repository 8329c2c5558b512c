/* SPDX-License-Identifier: MIT */
/* godwit-tcp-baseline: the physical limits the pull benchmarks are measured
 * against. Sends bytes over loopback TCP with STREAMS parallel connections
 * for SECONDS (optionally through a relay, e.g. godwit-linkem) and prints
 * MB/s as JSON; with --ping, measures round-trip latency instead (a 1-byte
 * ping answered by --reply-bytes, e.g. 256K: a request and a chunk); with
 * --copy SRC --to DST, moves a file over the streams with nothing but
 * pread, send, recv and pwrite (what a pull costs with no protocol at all);
 * --tls makes each of its streams TLS 1.3 with OpenSSL on the socket (what
 * encryption alone adds to that, without gRPC).
 *
 *   godwit-tcp-baseline [--streams 1] [--seconds 3] [--via-port PORT --listen-port PORT]
 *   godwit-tcp-baseline --copy SRC --to DST [--streams N] [--tls]
 */
#include "options.h"
#include "tls-stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 1 << 20, COPY_BLOCK = 256 << 10 };

struct baseline {
    int listener;
    int connect_port; /* where senders connect: the sink, or a relay in front of it */
    unsigned streams;
    uint64_t deadline_us;
    _Atomic uint64_t received;
    _Atomic unsigned next_range; /* --copy: the share the next sender takes */
    int copy_from, copy_to;      /* --copy: the files, else -1 */
    uint64_t copy_size;
    const struct tls_contexts *tls; /* --tls: read-only, else NULL */
    _Atomic(const char *) cipher;   /* what a copy stream negotiated */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int listen_loopback(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 64) < 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *bound = ntohs(addr.sin_port);
    return fd;
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? fd : -1;
}

/* Receives one connection's bytes until the sender closes. */
static void *sink(void *arg)
{
    struct baseline *b = arg;
    int fd = accept(b->listener, NULL, NULL);
    char *buf = malloc(BLOCK);
    ssize_t n;
    while (fd >= 0 && (n = recv(fd, buf, BLOCK, 0)) > 0)
        if (now_us() < b->deadline_us)
            atomic_fetch_add(&b->received, (uint64_t)n);
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *source(void *arg)
{
    struct baseline *b = arg;
    int fd = connect_loopback(b->connect_port);
    char *buf = calloc(1, BLOCK);
    while (fd >= 0 && now_us() < b->deadline_us)
        if (send(fd, buf, BLOCK, MSG_NOSIGNAL) <= 0)
            break;
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* --copy: stream INDEX of N sends its share of the file, a contiguous
 * range, after an 8-byte header naming where the range starts. */
static void range_of(const struct baseline *b, unsigned index, uint64_t *start, uint64_t *end)
{
    uint64_t share = (b->copy_size / b->streams + COPY_BLOCK - 1) / COPY_BLOCK * COPY_BLOCK;
    *start = share * index < b->copy_size ? share * index : b->copy_size;
    *end = *start + share < b->copy_size ? *start + share : b->copy_size;
}

static void *copy_sink(void *arg)
{
    struct baseline *b = arg;
    struct stream s = {-1, NULL};
    int fd = accept(b->listener, NULL, NULL);
    char *buf = malloc(COPY_BLOCK);
    uint64_t offset;
    bool ok = buf && fd >= 0 && stream_open(&s, fd, b->tls, true) &&
              stream_recv(&s, &offset, sizeof offset) == sizeof offset;
    if (ok)
        atomic_store(&b->cipher, stream_cipher(&s));
    ssize_t n;
    while (ok && (n = stream_recv(&s, buf, COPY_BLOCK)) > 0 &&
           pwrite(b->copy_to, buf, (size_t)n, (off_t)offset) == n) {
        atomic_fetch_add(&b->received, (uint64_t)n);
        offset += (uint64_t)n;
    }
    free(buf);
    if (s.fd < 0 && fd >= 0)
        close(fd);
    stream_close(&s);
    return NULL;
}

static void *copy_source(void *arg)
{
    struct baseline *b = arg;
    struct stream s = {-1, NULL};
    uint64_t offset, end;
    range_of(b, atomic_fetch_add(&b->next_range, 1), &offset, &end);
    int fd = connect_loopback(b->connect_port);
    char *buf = malloc(COPY_BLOCK);
    bool ok = buf && fd >= 0 && stream_open(&s, fd, b->tls, false) &&
              stream_send(&s, &offset, sizeof offset);
    while (ok && offset < end) {
        ssize_t n = pread(b->copy_from, buf, end - offset < COPY_BLOCK ? end - offset : COPY_BLOCK,
                          (off_t)offset);
        ok = n > 0 && stream_send(&s, buf, (size_t)n);
        offset += ok ? (uint64_t)n : 0;
    }
    free(buf);
    if (s.fd < 0 && fd >= 0)
        close(fd);
    stream_close(&s);
    return NULL;
}

/* The answering side of a ping: for each byte received, REPLY bytes back. */
struct pong {
    int fd;
    size_t reply;
};

static void *pong_side(void *arg)
{
    struct pong *p = arg;
    char *buf = calloc(1, p->reply), byte;
    if (!buf)
        fprintf(stderr, "godwit-tcp-baseline: no memory for a %zu-byte reply\n", p->reply);
    while (buf && recv(p->fd, &byte, 1, 0) == 1 &&
           send(p->fd, buf, p->reply, MSG_NOSIGNAL) == (ssize_t)p->reply)
        ;
    free(buf);
    shutdown(p->fd, SHUT_RDWR);
    return NULL;
}

/* Receives LEN bytes into BUF; false at end of stream or on an error. */
static bool recv_all(int fd, char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { PING_TIMEOUT_S = 10, PING_ACCEPTS = 16 };

/* Gives FD's receives a timeout, so a lost peer fails the ping. */
static void recv_timeout(int fd, int seconds)
{
    struct timeval tv = {seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Accepts the connection that starts with TOKEN (the ping's, through any
 * relay): anything else that connects to the port meanwhile (a script
 * probing for a free port) is closed. -1 if none came. */
static int accept_token(int listener, uint64_t token)
{
    for (int i = 0; i < PING_ACCEPTS; i++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            return -1;
        uint64_t got = 0;
        recv_timeout(fd, 1);
        if (recv_all(fd, (char *)&got, sizeof got) && got == token) {
            recv_timeout(fd, PING_TIMEOUT_S);
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Median round trip of COUNT pings of 1 byte answered by REPLY bytes (1: a
 * ping-pong; 256K: a request and a chunk), microseconds; -1 if it failed. */
static double ping(struct baseline *b, unsigned count, size_t reply)
{
    uint64_t token = now_us() ^ ((uint64_t)getpid() << 32);
    int client = connect_loopback(b->connect_port);
    if (client < 0 || send(client, &token, sizeof token, MSG_NOSIGNAL) != sizeof token) {
        fprintf(stderr, "godwit-tcp-baseline: cannot connect the ping: %s\n", strerror(errno));
        exit(1);
    }
    recv_timeout(client, PING_TIMEOUT_S);
    int server = accept_token(b->listener, token), one = 1;
    if (server < 0) {
        fprintf(stderr, "godwit-tcp-baseline: the ping's connection never arrived\n");
        exit(1);
    }
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *samples = calloc(count, sizeof *samples);
    char *buf = malloc(reply);
    struct pong pong = {server, reply};
    pthread_t answer;
    if (!samples || !buf || pthread_create(&answer, NULL, pong_side, &pong) != 0) {
        fprintf(stderr, "godwit-tcp-baseline: cannot set up the ping: %s\n", strerror(errno));
        exit(1);
    }
    unsigned done = 0;
    for (char byte = 1; done < count; done++) {
        uint64_t start = now_us();
        if (send(client, &byte, 1, 0) != 1 || !recv_all(client, buf, reply))
            break;
        samples[done] = (double)(now_us() - start);
    }
    shutdown(client, SHUT_RDWR);
    pthread_join(answer, NULL);
    qsort(samples, done, sizeof *samples, compare_doubles);
    double median = done == count ? samples[count / 2] : -1;
    free(samples);
    free(buf);
    close(client);
    close(server);
    return median;
}

/* User and system CPU seconds of the whole process so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* --copy: opens SRC to read and DST to write at SRC's size; -1 with a sentence. */
static int open_copy(struct baseline *b, const char *from, const char *to)
{
    b->copy_from = open(from, O_RDONLY);
    b->copy_to = to ? open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    off_t size = b->copy_from >= 0 ? lseek(b->copy_from, 0, SEEK_END) : -1;
    if (b->copy_from < 0 || b->copy_to < 0 || size < 0 || ftruncate(b->copy_to, size) < 0) {
        fprintf(stderr,
                "godwit-tcp-baseline: --copy needs a readable file and --to a writable one\n");
        return -1;
    }
    b->copy_size = (uint64_t)size;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned streams = 1, seconds = 3, listen_port = 0, via_port = 0;
    uint64_t reply_bytes = 1;
    bool do_ping = false, tls = false;
    const char *copy_from = NULL, *copy_to = NULL;
    struct option_spec specs[] = {
        {"streams", OPTION_UINT, &streams, "N", "parallel TCP connections (default 1)"},
        {"seconds", OPTION_UINT, &seconds, "S", "how long to send (default 3)"},
        {"listen-port", OPTION_UINT, &listen_port, "PORT", "sink port (default: any)"},
        {"via-port", OPTION_UINT, &via_port, "PORT",
         "connect to this relay port (which forwards to --listen-port) instead of the sink"},
        {"ping", OPTION_BOOL, &do_ping, NULL, "measure the median round trip instead"},
        {"reply-bytes", OPTION_SIZE, &reply_bytes, "BYTES",
         "--ping: each 1-byte ping is answered with BYTES (default 1; 256K: a chunk)"},
        {"copy", OPTION_STRING, &copy_from, "FILE", "move this file over the streams instead"},
        {"to", OPTION_STRING, &copy_to, "FILE", "where --copy writes (created or truncated)"},
        {"tls", OPTION_BOOL, &tls, NULL, "--copy over TLS 1.3 (OpenSSL on the socket, no gRPC)"},
    };
    char err[256];
    const struct program_info info = {
        "godwit-tcp-baseline", "loopback TCP throughput baseline",
        "[--streams N] [--seconds S] [--ping] [--copy SRC --to DST [--tls]]"};
    int r = options_parse(&info, specs, sizeof specs / sizeof *specs, argc, argv, err, sizeof err);
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "godwit-tcp-baseline: %s\n", err);
        return r < 0 ? 2 : 0;
    }
    if (tls && !copy_from) {
        fprintf(stderr,
                "godwit-tcp-baseline: --tls needs --copy (it encrypts the copy's streams)\n");
        return 2;
    }
    struct baseline b = {.streams = streams ? streams : 1, .copy_from = -1, .copy_to = -1};
    if (copy_from && open_copy(&b, copy_from, copy_to) < 0)
        return 1;
    struct tls_contexts contexts = {NULL, NULL};
    if (tls && tls_contexts_init(&contexts, err, sizeof err) < 0) {
        fprintf(stderr, "godwit-tcp-baseline: %s\n", err);
        return 1;
    }
    b.tls = tls ? &contexts : NULL;
    signal(SIGPIPE, SIG_IGN); /* a TLS close_notify to a peer that already closed */
    int bound;
    b.listener = listen_loopback((int)listen_port, &bound);
    if (b.listener < 0) {
        fprintf(stderr, "godwit-tcp-baseline: cannot listen on port %u\n", listen_port);
        return 1;
    }
    b.connect_port = via_port ? (int)via_port : bound;
    if (do_ping) {
        double rtt = ping(&b, 101, reply_bytes ? (size_t)reply_bytes : 1);
        if (rtt < 0) {
            fprintf(stderr, "godwit-tcp-baseline: the ping connection broke\n");
            return 1;
        }
        printf("{\"rtt_us\":%.1f,\"reply_bytes\":%llu}\n", rtt,
               (unsigned long long)(reply_bytes ? reply_bytes : 1));
        return 0;
    }
    pthread_t *threads = calloc(2 * b.streams, sizeof *threads);
    if (!threads) {
        fprintf(stderr, "godwit-tcp-baseline: out of memory\n");
        return 1;
    }
    bool copying = b.copy_from >= 0;
    double cpu_before = cpu_seconds();
    uint64_t start = now_us();
    b.deadline_us = copying ? UINT64_MAX : start + seconds * 1000000ull;
    for (unsigned i = 0; i < b.streams; i++) {
        pthread_create(&threads[2 * i], NULL, copying ? copy_sink : sink, &b);
        pthread_create(&threads[2 * i + 1], NULL, copying ? copy_source : source, &b);
    }
    for (unsigned i = 0; i < 2 * b.streams; i++)
        pthread_join(threads[i], NULL);
    double elapsed = (double)((copying ? now_us() : b.deadline_us) - start) / 1e6;
    uint64_t received = atomic_load(&b.received);
    if (copying && received != b.copy_size) {
        fprintf(stderr, "godwit-tcp-baseline: copied %llu of %llu bytes\n",
                (unsigned long long)received, (unsigned long long)b.copy_size);
        return 1;
    }
    if (copying)
        printf("{\"streams\":%u,\"copy\":true,\"cipher\":\"%s\",\"mb_per_s\":%.1f,"
               "\"cpu_s_per_gib\":%.3f}\n",
               b.streams, atomic_load(&b.cipher), (double)received / elapsed / 1e6,
               (cpu_seconds() - cpu_before) / ((double)received / (1u << 30)));
    else
        printf("{\"streams\":%u,\"mb_per_s\":%.1f}\n", b.streams, (double)received / elapsed / 1e6);
    free(threads);
    tls_contexts_free(&contexts);
    close(b.listener);
    options_free(specs, sizeof specs / sizeof *specs);
    return 0;
}
