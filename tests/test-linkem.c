/* SPDX-License-Identifier: MIT */
/* Test of the link emulator: a ping-pong through godwit-linkem at RTT r
 * takes at least r (and not wildly more), bytes arrive intact and in
 * order, and SIGUSR1 / SIGUSR2 cut and restore the link. */
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
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

/* Echoes every connection until it closes. */
static void *echo_server(void *arg)
{
    int listener = *(int *)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        char buf[65536];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
            if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
                break;
        close(fd);
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

    kill(pid, SIGUSR1); /* cut */
    usleep(200000);
    CHECK(!roundtrip(fd, ping, pong, sizeof ping), "the link was cut but data still flowed");
    close(fd);
    fd = connect_port(relay_port);
    CHECK(fd < 0 || !roundtrip(fd, ping, pong, sizeof ping), "a cut link accepted traffic");
    if (fd >= 0)
        close(fd);
    kill(pid, SIGUSR2); /* restore */
    usleep(100000);
    fd = connect_port(relay_port);
    CHECK(fd >= 0 && roundtrip(fd, ping, pong, sizeof ping), "restored link works");
    close(fd);

    CHECK(test_stop(pid, 5000) == 0, "linkem exit status");
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
