/* SPDX-License-Identifier: MIT */
/* Test of the link emulator: a ping-pong through godwit-linkem at RTT r
 * takes at least r (and not wildly more), bytes arrive intact and in
 * order, SIGUSR1 / SIGUSR2 cut and restore the link, with
 * --shared-rate two connections share one line's rate, and the line's
 * queue is bounded: a sender faster than the line gets backpressure, not
 * megabytes buffered in the relay, and another connection's round trip
 * waits behind the full queue (FIFO) but no more. With no RTT and no
 * rate it relays directly, from one thread per direction. */
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 16) == 0, "listen");
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Echoes one connection until it closes (FD smuggled in the pointer). */
static void *echo_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    close(fd);
    return NULL;
}

/* Echoes every connection, each on a thread of its own, until the listener closes. */
static void *echo_server(void *arg)
{
    int listener = *(int *)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, echo_connection, (void *)(intptr_t)fd) == 0,
              "start an echo thread");
        pthread_detach(thread);
    }
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool roundtrip(int fd, const void *out, void *in, size_t len)
{
    if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t)len)
        return false;
    for (size_t got = 0; got < len;) {
        ssize_t n = recv(fd, (char *)in + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* One connection's share of the shared-line check: echo LEN bytes. */
struct echo_job {
    int fd;
    size_t len;
    bool ok;
};

static void *echo_job_run(void *arg)
{
    struct echo_job *job = arg;
    char *out = malloc(job->len), *in = malloc(job->len);
    CHECK(out && in, "out of memory");
    test_fill_random(out, job->len, (unsigned)job->fd);
    job->ok = roundtrip(job->fd, out, in, job->len) && memcmp(out, in, job->len) == 0;
    free(out);
    free(in);
    return NULL;
}

/* --rate-mbps 4 --shared-rate: two connections echoing 1 MiB each put
 * 2 MiB on each direction's one line, so it takes at least 2 MiB / 4 MB/s
 * (with a line per connection: half that). */
static void check_shared_rate(const char *linkem, const char *target_arg, const char *dir)
{
    char log[512];
    snprintf(log, sizeof log, "%s/linkem-shared.log", dir);
    char *argv[] = {(char *)linkem,     "--listen",    "127.0.0.1:0", "--target",
                    (char *)target_arg, "--rate-mbps", "4",           "--shared-rate",
                    "--log-format",     "json",        NULL};
    pid_t pid;
    json_t *ready = test_spawn_ready(argv, log, &pid, 5000);
    int port = test_event_int(ready, "port");
    json_decref(ready);
    struct echo_job jobs[2];
    pthread_t threads[2];
    uint64_t start = test_now_us();
    for (int i = 0; i < 2; i++) {
        jobs[i] = (struct echo_job){.fd = connect_port(port), .len = 1 << 20};
        CHECK(jobs[i].fd >= 0, "connect through the shared line");
        pthread_create(&threads[i], NULL, echo_job_run, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        CHECK(jobs[i].ok, "connection %d's 1 MiB came back intact", i);
        close(jobs[i].fd);
    }
    uint64_t took = test_now_us() - start, floor_us = 2 * (1 << 20) / 4; /* bytes / (4 B/us) */
    CHECK(took >= floor_us * 95 / 100,
          "2 MiB crossed a shared 4 MB/s line in %llu us, faster than the line allows",
          (unsigned long long)took);
    CHECK(took < 10 * floor_us, "2 MiB over a shared 4 MB/s line took %llu us",
          (unsigned long long)took);
    printf("linkem: 2 x 1 MiB echoed over one shared 4 MB/s line in %.2f s\n", took / 1e6);
    CHECK(test_stop(pid, 5000) == 0, "shared-rate linkem exit status");
}

/* A connection that sends as fast as the relay takes it and reads the
 * echo back, counting both (atomics: the checker reads them). */
struct flood {
    int fd;
    _Atomic uint64_t sent, received;
};

static void *flood_send(void *arg)
{
    struct flood *f = arg;
    static char buf[64 << 10];
    ssize_t n;
    while ((n = send(f->fd, buf, sizeof buf, MSG_NOSIGNAL)) > 0)
        atomic_fetch_add(&f->sent, (uint64_t)n);
    return NULL;
}

static void *flood_receive(void *arg)
{
    struct flood *f = arg;
    static char buf[64 << 10];
    ssize_t n;
    while ((n = recv(f->fd, buf, sizeof buf, 0)) > 0)
        atomic_fetch_add(&f->received, (uint64_t)n);
    return NULL;
}

enum { QUEUE_MS = 200, PINGS = 5 };

/* Waits until the flood has echoed BYTES, i.e. it crosses both lines and
 * their queues are full; fails the test after a minute. */
static void wait_for_flood(struct flood *f, uint64_t bytes)
{
    for (int waited = 0; atomic_load(&f->received) < bytes; waited += 10) {
        CHECK(waited < 60000, "the flood echoed %llu bytes in a minute",
              (unsigned long long)atomic_load(&f->received));
        usleep(10000);
    }
}

/* One round trip on a new connection through the flooded line, in microseconds. */
static uint64_t ping_through(int port)
{
    int fd = connect_port(port);
    CHECK(fd >= 0, "connect the ping");
    char ping[64] = "ping", pong[64];
    uint64_t start = test_now_us();
    CHECK(roundtrip(fd, ping, pong, sizeof ping), "ping through the flooded line");
    uint64_t took = test_now_us() - start;
    close(fd);
    return took;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* --rate-mbps 4 --shared-rate --queue-ms 200: a flood through the line
 * holds at most the kernels' socket buffers and the two 200 ms queues in
 * flight (an unbounded relay took in all it could read: hundreds of
 * MiB), and pings on other connections wait behind the full queue (it
 * is FIFO, as a router's), and not seconds. A ping can find the queue
 * part-drained when the relay's flood reader lost the CPU for a while
 * (a loaded machine), so the median of PINGS pings must have waited at
 * least half the queue; one that overtook the queue takes about 1 ms. */
static void check_queue_bound(const char *linkem, const char *target_arg, const char *dir)
{
    char log[512], queue_ms[16];
    snprintf(log, sizeof log, "%s/linkem-queue.log", dir);
    snprintf(queue_ms, sizeof queue_ms, "%d", QUEUE_MS);
    char *argv[] = {(char *)linkem,
                    "--listen",
                    "127.0.0.1:0",
                    "--target",
                    (char *)target_arg,
                    "--rate-mbps",
                    "4",
                    "--shared-rate",
                    "--queue-ms",
                    queue_ms,
                    "--log-format",
                    "json",
                    NULL};
    pid_t pid;
    json_t *ready = test_spawn_ready(argv, log, &pid, 5000);
    int port = test_event_int(ready, "port");
    json_decref(ready);
    struct flood f = {.fd = connect_port(port)};
    CHECK(f.fd >= 0, "connect the flood");
    pthread_t sender, receiver;
    pthread_create(&sender, NULL, flood_send, &f);
    pthread_create(&receiver, NULL, flood_receive, &f);
    wait_for_flood(&f, 1 << 20);
    uint64_t in_flight = atomic_load(&f.sent) - atomic_load(&f.received);
    uint64_t took[PINGS];
    for (int i = 0; i < PINGS; i++)
        took[i] = ping_through(port);
    qsort(took, PINGS, sizeof took[0], compare_u64);
    printf("linkem: flooded shared 4 MB/s line, %d ms queue: %.2f MiB in flight, pings %.1f .. "
           "%.1f ms, median %.1f\n",
           QUEUE_MS, (double)in_flight / (1 << 20), (double)took[0] / 1000,
           (double)took[PINGS - 1] / 1000, (double)took[PINGS / 2] / 1000);
    CHECK(in_flight < (32u << 20), "%llu bytes in flight: the relay's queue is not bounded",
          (unsigned long long)in_flight);
    CHECK(took[PINGS / 2] >= QUEUE_MS * 1000 / 2,
          "the median ping took %.1f ms: pings did not wait behind the %d ms queue",
          (double)took[PINGS / 2] / 1000, QUEUE_MS);
    CHECK(took[PINGS - 1] < 5000000, "a ping took %.1f ms behind a %d ms queue",
          (double)took[PINGS - 1] / 1000, QUEUE_MS);
    shutdown(f.fd, SHUT_RDWR);
    pthread_join(sender, NULL);
    pthread_join(receiver, NULL);
    close(f.fd);
    CHECK(test_stop(pid, 5000) == 0, "queue-bound linkem exit status");
}

/* SIGUSR1 cuts the link of the emulator PID (logging to LOG): FD, a
 * connection through it on RELAY_PORT, and new connections carry nothing;
 * SIGUSR2 restores it. Closes FD. */
static void check_cut_restore(pid_t pid, const char *log, int fd, int relay_port)
{
    char ping[64] = "ping", pong[64];
    kill(pid, SIGUSR1); /* cut */
    CHECK(test_wait_for_log(log, "link cut", 30000), "linkem logged no cut; see %s", log);
    CHECK(!roundtrip(fd, ping, pong, sizeof ping), "the link was cut but data still flowed");
    close(fd);
    fd = connect_port(relay_port);
    CHECK(fd < 0 || !roundtrip(fd, ping, pong, sizeof ping), "a cut link accepted traffic");
    if (fd >= 0)
        close(fd);
    kill(pid, SIGUSR2); /* restore */
    CHECK(test_wait_for_log(log, "link restored", 30000), "linkem logged no restore; see %s", log);
    fd = connect_port(relay_port);
    CHECK(fd >= 0 && roundtrip(fd, ping, pong, sizeof ping), "restored link works");
    close(fd);
}

/* The threads process PID runs now (/proc/PID/status). */
static int threads_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    CHECK(f, "open %s: %s", path, strerror(errno));
    int threads = -1;
    while (threads < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &threads) != 1)
            threads = -1;
    fclose(f);
    CHECK(threads > 0, "no thread count in %s", path);
    return threads;
}

/* Threads of emulator PID once it settles at EXPECT (a connection's
 * threads start as it is accepted): the count it settled at, after 5 s. */
static int settled_threads(pid_t pid, int expect)
{
    int n = threads_of(pid);
    for (int waited = 0; n != expect && waited < 5000; waited += 10) {
        usleep(10000);
        n = threads_of(pid);
    }
    return n;
}

/* With no RTT and no rate the emulator relays from each direction's
 * reader thread (no hand-off to a writer: 2 threads per connection, not
 * 4): 4 MiB each way arrive intact and in order, and cut and restore work
 * as on a delayed link. */
static void check_direct(const char *linkem, const char *target_arg, const char *dir)
{
    char log[512];
    snprintf(log, sizeof log, "%s/linkem-direct.log", dir);
    char *argv[] = {(char *)linkem,     "--listen",     "127.0.0.1:0", "--target",
                    (char *)target_arg, "--log-format", "json",        NULL};
    pid_t pid;
    json_t *ready = test_spawn_ready(argv, log, &pid, 5000);
    int port = test_event_int(ready, "port");
    json_decref(ready);
    int idle = threads_of(pid);
    int fd = connect_port(port);
    CHECK(fd >= 0, "connect through the direct relay");
    size_t big = 4 << 20;
    char *out = malloc(big), *in = malloc(big);
    CHECK(out && in, "out of memory");
    test_fill_random(out, big, 11);
    CHECK(roundtrip(fd, out, in, big) && memcmp(out, in, big) == 0,
          "4 MiB arrives intact through the direct relay");
    int busy = settled_threads(pid, idle + 3);
    CHECK(busy == idle + 3,
          "a connection through the direct relay runs %d threads (%d idle; want its own and "
          "one reader per direction)",
          busy, idle);
    printf("linkem: direct relay (no RTT, no rate): 4 MiB echoed, %d threads per connection\n",
           busy - idle);
    free(out);
    free(in);
    check_cut_restore(pid, log, fd, port);
    CHECK(test_stop(pid, 5000) == 0, "direct linkem exit status");
}

int main(void)
{
    int echo_port, listener = listen_port(&echo_port);
    pthread_t echo;
    pthread_create(&echo, NULL, echo_server, &listener);
    char target_arg[32];
    snprintf(target_arg, sizeof target_arg, "127.0.0.1:%d", echo_port);
    char *linkem = test_program("bench/godwit-linkem");
    char *dir = test_make_dir("test-linkem"), log[512];
    snprintf(log, sizeof log, "%s/linkem.log", dir);
    char *argv[] = {linkem,     "--listen", "127.0.0.1:0",  "--target", target_arg,
                    "--rtt-ms", "20",       "--log-format", "json",     NULL};
    pid_t pid;
    json_t *ready = test_spawn_ready(argv, log, &pid, 5000);
    int relay_port = test_event_int(ready, "port");
    json_decref(ready);

    int fd = connect_port(relay_port);
    CHECK(fd >= 0, "connect through linkem");
    char ping[64] = "ping", pong[64];
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 10; i++) {
        uint64_t start = test_now_us();
        CHECK(roundtrip(fd, ping, pong, sizeof ping), "ping-pong %d", i);
        uint64_t took = test_now_us() - start;
        best = took < best ? took : best;
        CHECK(took >= 20000, "a round trip took %llu us, less than the 20 ms RTT",
              (unsigned long long)took);
    }
    CHECK(best < 20000 + 30000, "the fastest round trip took %llu us for a 20 ms RTT",
          (unsigned long long)best);
    printf("linkem: ping-pong at 20 ms RTT: best %.2f ms\n", best / 1000.0);

    size_t big = 4 << 20;
    char *out = malloc(big), *in = malloc(big);
    test_fill_random(out, big, 7);
    CHECK(roundtrip(fd, out, in, big) && memcmp(out, in, big) == 0, "4 MiB arrives intact");

    check_cut_restore(pid, log, fd, relay_port);
    CHECK(test_stop(pid, 5000) == 0, "linkem exit status");
    check_direct(linkem, target_arg, dir);
    check_shared_rate(linkem, target_arg, dir);
    check_queue_bound(linkem, target_arg, dir);
    free(out);
    free(in);
    free(linkem);
    test_cleanup_dir(dir);
    free(dir);
    shutdown(listener, SHUT_RDWR);
    close(listener);
    pthread_join(echo, NULL);
    return 0;
}
