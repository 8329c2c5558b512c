/* SPDX-License-Identifier: MIT */
/* godwit-linkem: a user-space link emulator. A TCP relay that delays each
 * direction by RTT/2 and can cap its bandwidth, because the kernels we run
 * on have no tc netem. SIGUSR1 cuts the link (drops every connection and
 * refuses new ones), SIGUSR2 restores it: for fault-injection tests.
 *
 *   godwit-linkem --listen 127.0.0.1:9000 --target 127.0.0.1:1337 --rtt-ms 10 [--rate-mbps 1000]
 *                 [--shared-rate] [--queue-ms 50 | --queue-bytes 256K] [--corrupt-every KIB]
 *
 * --rate-mbps caps each connection on a line of its own; with --shared-rate
 * all connections take turns on one line per direction, in segments of at
 * most 1 ms, as packets share a real link. In front of each line is a FIFO
 * queue like a router's buffer, bounded (--queue-ms of the line, default
 * 50, or --queue-bytes) and drop-free: when it is full the relay stops
 * reading from the sender, so TCP backpressure holds the rest in the
 * sender's socket, and a segment of another connection waits behind at
 * most the queue, as on a real link. A segment leaves the line in arrival
 * order, then takes RTT/2 to arrive.
 *
 * --corrupt-every N flips one bit in every N KiB of the payload of large
 * HTTP/2 DATA frames from the target to the client (plaintext gRPC only):
 * ReadAt reply bytes, never a frame header, a gRPC message prefix or a
 * small control reply, so the stream stays well formed and only the
 * messages' contents are wrong (as a bad NIC or relay would make them).
 *
 * Once it listens it prints a ready event with the bound port (--listen
 * 127.0.0.1:0 lets the kernel pick one); --log-format json makes its lines
 * JSON objects on stdout, as the daemons' are. With no RTT and no rate it
 * is a plain relay: each direction's reader sends what it read itself. */
#include "cleanup.h"
#include "daemon.h"
#include "log.h"
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MS_UNSET UINT32_MAX /* --queue-ms not given */

enum {
    SEGMENT = 64 << 10,
    MAX_QUEUED = 256 << 20,    /* without a rate: the most a direction holds in flight */
    DIRECT_BUFFER = 256 << 10, /* what a direct relay (no RTT, no rate) reads at once */
    DEFAULT_QUEUE_MS = 50,
};

/* One block of bytes in flight, due for delivery at due_ns. */
struct segment {
    struct segment *next;
    uint64_t due_ns;
    size_t len;
    char data[];
};

/* --corrupt-every: follows the HTTP/2 frames of one direction (from its
 * first byte: the server's side starts with a SETTINGS frame) and flips a
 * bit at a random place in each EVERY bytes of eligible DATA payload (a
 * random place, so which reply is hit does not follow the order in which
 * the client's callers take turns). Eligible: in a DATA frame of at least
 * CORRUPT_MIN_FRAME payload bytes, past its first CORRUPT_SKIP (the 5-byte
 * gRPC message prefix and the protobuf field header of a reply's first
 * frame). Owned by the direction's reader. */
enum {
    H2_HEADER = 9,
    H2_DATA = 0,
    H2_SETTINGS = 4,
    CORRUPT_MIN_FRAME = 4096,
    CORRUPT_SKIP = 16,
};

struct corrupter {
    uint64_t every;      /* 0: off */
    uint64_t until_flip; /* eligible bytes until the next flip, which is... */
    uint64_t place;      /* ...at this offset in its window of EVERY bytes */
    uint64_t random;     /* xorshift64 state */
    uint8_t header[H2_HEADER];
    size_t header_got;
    uint32_t payload_len, payload_pos; /* of the current frame; pos == len: in a header */
    uint8_t type;
    bool started; /* the first frame was checked to be SETTINGS */
    uint64_t flipped;
};

/* One direction of one connection: a reader thread queues segments, a
 * writer thread delivers them when due. Everything is owned by lock. */
struct pipe_dir {
    struct connection *conn; /* set once before the threads start */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct segment *head, *tail;
    size_t queued;
    bool eof;    /* the reader saw end of stream or an error */
    bool broken; /* the writer failed: stop reading */
    bool done;   /* the writer has finished */
    int from, to;
    struct corrupter corrupt;  /* the reader's alone */
    uint64_t own_line_free_ns; /* without --shared-rate: when this direction's line is free
                                  again (its reader thread's alone, no lock) */
};

/* The emulated link. shared_line: every connection's segments take turns on
 * one line per direction (a real link's bandwidth), instead of each
 * connection having a line of its own; line_lock owns line_free_ns. */
struct link {
    uint64_t delay_ns;   /* one way: RTT / 2 */
    double bytes_per_ns; /* 0: unlimited */
    uint64_t queue_ns;   /* the line's queue holds at most this much of its time */
    bool shared_line;
    size_t segment_bytes;      /* largest segment read at once: SEGMENT, or 1 ms of a shared line */
    pthread_mutex_t line_lock; /* a leaf: taken with no other lock held */
    uint64_t line_free_ns[2];  /* [0] upstream, [1] downstream: when each line is free again */
    _Atomic bool cut;          /* connections are refused / dropped */
    _Atomic unsigned epoch;    /* bumped at each cut: connections of older epochs close */
    uint64_t corrupt_every;    /* --corrupt-every in bytes; 0: off */
    _Atomic uint64_t flipped;  /* bits flipped so far, all connections */
};

struct connection {
    struct link *link;
    unsigned epoch;
    struct pipe_dir up, down;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t due)
{
    uint64_t now = now_ns();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000u),
                              (long)((due - now) % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}

static int parse_address(const char *text, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    *addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

/* Flips bits in the eligible part [FROM, TO) of the current frame's
 * payload, which sits at P (the frame's bytes FROM..TO). */
/* A random offset in a window of EVERY bytes. */
static uint64_t next_place(struct corrupter *c)
{
    c->random ^= c->random << 13, c->random ^= c->random >> 7, c->random ^= c->random << 17;
    return c->random % c->every;
}

/* Starts corrupting every EVERY bytes (0: never), from SEED (not 0). */
static void corrupter_init(struct corrupter *c, uint64_t every, uint64_t seed)
{
    *c = (struct corrupter){.every = every, .random = seed};
    if (every) {
        c->place = next_place(c);
        c->until_flip = c->place + 1;
    }
}

static void corrupt_span(struct corrupter *c, char *p, uint32_t from, uint32_t to)
{
    if (c->type != H2_DATA || c->payload_len < CORRUPT_MIN_FRAME || to <= CORRUPT_SKIP)
        return;
    uint32_t at = from > CORRUPT_SKIP ? from : CORRUPT_SKIP; /* a position in the frame */
    while (to - at >= c->until_flip) {
        at += (uint32_t)c->until_flip;
        p[at - 1 - from] ^= 0x01; /* the until_flip-th eligible byte */
        c->flipped++;
        uint64_t next = next_place(c); /* in the next window */
        c->until_flip = c->every - c->place + next;
        c->place = next;
    }
    c->until_flip -= to - at;
}

/* Follows the frames in the LEN bytes at P and corrupts their eligible
 * payload; stops for good if the stream is not HTTP/2 as expected. */
static void corrupt(struct corrupter *c, char *p, size_t len)
{
    while (len > 0 && c->every) {
        if (c->payload_pos == c->payload_len) { /* in a frame header */
            size_t take = H2_HEADER - c->header_got < len ? H2_HEADER - c->header_got : len;
            memcpy(c->header + c->header_got, p, take);
            c->header_got += take, p += take, len -= take;
            if (c->header_got < H2_HEADER)
                return;
            c->header_got = 0;
            c->payload_len =
                (uint32_t)c->header[0] << 16 | (uint32_t)c->header[1] << 8 | c->header[2];
            c->payload_pos = 0;
            c->type = c->header[3];
            if (!c->started && c->type != H2_SETTINGS)
                c->every = 0; /* not cleartext HTTP/2 (TLS?): leave it alone */
            c->started = true;
            continue;
        }
        uint32_t take =
            c->payload_len - c->payload_pos < len ? c->payload_len - c->payload_pos : (uint32_t)len;
        corrupt_span(c, p, c->payload_pos, c->payload_pos + take);
        c->payload_pos += take, p += take, len -= take;
    }
}

/* The line DIR's segments take: the link's shared one for its direction,
 * or DIR's own; the shared one is owned by the link's line_lock. */
static uint64_t *line_of(struct pipe_dir *dir)
{
    struct link *link = dir->conn->link;
    return link->shared_line ? &link->line_free_ns[dir == &dir->conn->down]
                             : &dir->own_line_free_ns;
}

static uint64_t line_free_at(struct pipe_dir *dir)
{
    struct link *link = dir->conn->link;
    if (!link->shared_line)
        return dir->own_line_free_ns;
    LOCK_FOR_SCOPE(&link->line_lock);
    return *line_of(dir);
}

/* With a rate: waits until the line's queue has room, i.e. what is queued
 * for it would leave within queue_ns. Until then nothing is read from the
 * sender (backpressure), and nothing is dropped. */
static void wait_for_room(struct pipe_dir *dir)
{
    uint64_t queue_ns = dir->conn->link->queue_ns, free_at;
    while ((free_at = line_free_at(dir)) > now_ns() + queue_ns)
        sleep_until(free_at - queue_ns);
}

/* When a segment of LEN bytes read now is delivered: without a rate after
 * RTT/2; with one, once the segments queued before it and itself have
 * left the line (arrival order, across connections on a shared line),
 * plus RTT/2. */
static uint64_t schedule(struct pipe_dir *dir, size_t len)
{
    struct link *link = dir->conn->link;
    uint64_t now = now_ns();
    if (link->bytes_per_ns <= 0)
        return now + link->delay_ns;
    uint64_t busy_ns = (uint64_t)((double)len / link->bytes_per_ns);
    if (!link->shared_line) {
        dir->own_line_free_ns =
            (dir->own_line_free_ns > now ? dir->own_line_free_ns : now) + busy_ns;
        return dir->own_line_free_ns + link->delay_ns;
    }
    LOCK_FOR_SCOPE(&link->line_lock);
    uint64_t *free_ns = line_of(dir);
    *free_ns = (*free_ns > now ? *free_ns : now) + busy_ns;
    return *free_ns + link->delay_ns;
}

/* Nothing to delay: no RTT, no rate. */
static bool link_is_direct(const struct link *link)
{
    return link->delay_ns == 0 && link->bytes_per_ns <= 0;
}

static void relay_direct(struct pipe_dir *dir);

/* Reader side: reads when the line's queue has room, queues each segment
 * with the time it is due at the other end. */
static void *read_side(void *arg)
{
    struct pipe_dir *dir = arg;
    struct connection *conn = dir->conn;
    if (link_is_direct(conn->link)) {
        relay_direct(dir);
        return NULL;
    }
    for (;;) {
        size_t want = conn->link->segment_bytes;
        if (conn->link->bytes_per_ns > 0)
            wait_for_room(dir);
        struct segment *seg = malloc(sizeof *seg + want);
        ssize_t n = seg ? recv(dir->from, seg->data, want, 0) : -1;
        LOCK_FOR_SCOPE(&dir->lock);
        if (n <= 0 || dir->broken || atomic_load(&conn->link->epoch) != conn->epoch) {
            free(seg);
            dir->eof = true;
            pthread_cond_broadcast(&dir->changed);
            break;
        }
        seg->len = (size_t)n;
        if (dir->corrupt.every) {
            uint64_t before = dir->corrupt.flipped;
            corrupt(&dir->corrupt, seg->data, seg->len);
            atomic_fetch_add(&conn->link->flipped, dir->corrupt.flipped - before);
        }
        seg->due_ns = schedule(dir, seg->len);
        seg->next = NULL;
        *(dir->tail ? &dir->tail->next : &dir->head) = seg;
        dir->tail = seg;
        dir->queued += seg->len;
        pthread_cond_broadcast(&dir->changed);
        while (dir->queued > MAX_QUEUED && !dir->broken)
            pthread_cond_wait(&dir->changed, &dir->lock);
    }
    return NULL;
}

static struct segment *next_segment(struct pipe_dir *dir)
{
    LOCK_FOR_SCOPE(&dir->lock);
    while (!dir->head && !dir->eof)
        pthread_cond_wait(&dir->changed, &dir->lock);
    struct segment *seg = dir->head;
    if (seg) {
        dir->head = seg->next;
        if (!dir->head)
            dir->tail = NULL;
        dir->queued -= seg->len;
        pthread_cond_broadcast(&dir->changed);
    }
    return seg;
}

/* With no delay and no rate the link emulates nothing but a hop: the
 * reader sends what it read at once, from the same thread (and corrupts it
 * first, if asked). Handing each segment to a writer thread through the
 * queue cost two more wake-ups a round trip and one per 64 KiB: a 1-byte
 * ping answered by 256 KiB took ~150 us more than without the relay, ~95
 * us more this way (godwit-tcp-baseline --ping --reply-bytes 256K). */
static void relay_direct(struct pipe_dir *dir)
{
    struct connection *conn = dir->conn;
    char *buf = malloc(DIRECT_BUFFER);
    if (!buf)
        fprintf(stderr, "godwit-linkem: no memory for a relay buffer: closing the connection\n");
    ssize_t n;
    while (buf && (n = recv(dir->from, buf, DIRECT_BUFFER, 0)) > 0 &&
           atomic_load(&conn->link->epoch) == conn->epoch) {
        if (dir->corrupt.every) {
            uint64_t before = dir->corrupt.flipped;
            corrupt(&dir->corrupt, buf, (size_t)n);
            atomic_fetch_add(&conn->link->flipped, dir->corrupt.flipped - before);
        }
        if (send(dir->to, buf, (size_t)n, MSG_NOSIGNAL) != n) {
            shutdown(dir->from, SHUT_RD);
            break;
        }
    }
    free(buf);
    shutdown(dir->to, SHUT_WR);
    LOCK_FOR_SCOPE(&dir->lock);
    dir->eof = dir->done = true;
}

/* Writer side: deliver each segment when due. */
static void *write_side(void *arg)
{
    struct pipe_dir *dir = arg;
    struct connection *conn = dir->conn;
    struct segment *seg;
    while ((seg = next_segment(dir))) {
        sleep_until(seg->due_ns);
        bool ok = atomic_load(&conn->link->epoch) == conn->epoch &&
                  send(dir->to, seg->data, seg->len, MSG_NOSIGNAL) == (ssize_t)seg->len;
        free(seg);
        if (!ok) {
            LOCK_FOR_SCOPE(&dir->lock);
            dir->broken = true;
            pthread_cond_broadcast(&dir->changed);
            shutdown(dir->from, SHUT_RD);
            break;
        }
    }
    shutdown(dir->to, SHUT_WR);
    LOCK_FOR_SCOPE(&dir->lock);
    dir->done = true;
    return NULL;
}

static bool writer_done(struct pipe_dir *dir)
{
    LOCK_FOR_SCOPE(&dir->lock);
    return dir->done;
}

/* The reader or writer thread of DIR could not start: the other side of
 * DIR ends as if it had (end of stream, or a broken writer). */
static void side_failed(struct pipe_dir *dir, bool reader, bool direct)
{
    LOCK_FOR_SCOPE(&dir->lock);
    if (reader) {
        dir->eof = true;
        dir->done = dir->done || direct; /* no writer to finish */
    } else {
        dir->broken = dir->done = true;
        shutdown(dir->from, SHUT_RD);
    }
    pthread_cond_broadcast(&dir->changed);
}

static void pipe_init(struct pipe_dir *dir, struct connection *conn, int from, int to)
{
    dir->conn = conn;
    pthread_mutex_init(&dir->lock, NULL);
    pthread_cond_init(&dir->changed, NULL);
    dir->from = from;
    dir->to = to;
}

static void pipe_drain(struct pipe_dir *dir)
{
    while (dir->head) {
        struct segment *seg = dir->head;
        dir->head = seg->next;
        free(seg);
    }
    pthread_mutex_destroy(&dir->lock);
    pthread_cond_destroy(&dir->changed);
}

/* Runs both directions of one connection until both end, or the link is
 * cut (then the sockets are shut down to wake the readers); detached. */
static void *serve_connection(void *arg)
{
    struct connection *conn = arg;
    pthread_t threads[4];
    /* A direct link (link_is_direct) needs no writers: each reader sends. */
    bool direct = link_is_direct(conn->link);
    struct pipe_dir *dirs[4] = {&conn->up, &conn->down, &conn->up, &conn->down};
    int started = 0;
    for (int i = 0; i < (direct ? 2 : 4); i++) {
        bool reader = i < 2;
        int err = pthread_create(&threads[started], NULL, reader ? read_side : write_side, dirs[i]);
        if (err == 0) {
            started++;
            continue;
        }
        fprintf(stderr, "godwit-linkem: cannot start a relay thread (%s): closing a connection\n",
                strerror(err));
        side_failed(dirs[i], reader, direct);
    }
    while (!writer_done(&conn->up) || !writer_done(&conn->down)) {
        if (atomic_load(&conn->link->epoch) != conn->epoch) {
            shutdown(conn->up.from, SHUT_RDWR);
            shutdown(conn->down.from, SHUT_RDWR);
        }
        sleep_until(now_ns() + 20000000u);
    }
    shutdown(conn->up.from, SHUT_RDWR);
    shutdown(conn->down.from, SHUT_RDWR);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    close(conn->up.from);
    close(conn->down.from);
    pipe_drain(&conn->up);
    pipe_drain(&conn->down);
    free(conn);
    return NULL;
}

static void accept_one(struct link *link, int listener, const struct sockaddr_in *target)
{
    int client = accept(listener, NULL, NULL);
    if (client < 0)
        return;
    int server = socket(AF_INET, SOCK_STREAM, 0);
    if (atomic_load(&link->cut) ||
        connect(server, (const struct sockaddr *)target, sizeof *target) < 0) {
        close(client);
        close(server);
        return;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct connection *conn = calloc(1, sizeof *conn);
    if (!conn) {
        fprintf(stderr, "godwit-linkem: no memory for a connection: refusing it\n");
        close(client);
        close(server);
        return;
    }
    conn->link = link;
    conn->epoch = atomic_load(&link->epoch);
    pipe_init(&conn->up, conn, client, server);
    pipe_init(&conn->down, conn, server, client);
    corrupter_init(&conn->down.corrupt, link->corrupt_every,
                   0x9e3779b97f4a7c15ull * (conn->epoch + 1) + (uint64_t)client);
    pthread_t thread;
    int err = pthread_create(&thread, NULL, serve_connection, conn);
    if (err) {
        fprintf(stderr, "godwit-linkem: cannot serve a connection (%s): refusing it\n",
                strerror(err));
        close(client);
        close(server);
        pipe_drain(&conn->up);
        pipe_drain(&conn->down);
        free(conn);
        return;
    }
    pthread_detach(thread);
}

/* Accepts until a stop signal; handles cut/restore signals. */
static void *accept_loop(void *arg)
{
    void **args = arg;
    struct link *link = args[0];
    int listener = *(int *)args[1];
    const struct sockaddr_in *target = args[2];
    for (;;) {
        struct pollfd pfd = {listener, POLLIN, 0};
        if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
            break;
        if (pfd.revents & POLLIN)
            accept_one(link, listener, target);
        if (pfd.revents & (POLLNVAL | POLLHUP))
            break;
    }
    return NULL;
}

/* Listens on ADDR; stores the bound port in *PORT (ADDR may ask for 0). */
static int listen_on(const struct sockaddr_in *addr, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(bound.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    char *listen_addr = NULL, *target_addr = NULL, *log_format = NULL;
    unsigned rtt_us = 0, rtt_ms = 0, rate_mbps = 0, corrupt_kib = 0, queue_ms = QUEUE_MS_UNSET;
    uint64_t queue_bytes = 0;
    bool shared_rate = false;
    enum log_format format = LOG_TEXT;
    struct option_spec specs[] = {
        {"listen", OPTION_STRING, &listen_addr, "ADDR:PORT", "where clients connect (required)"},
        {"target", OPTION_STRING, &target_addr, "ADDR:PORT", "where to relay to (required)"},
        {"rtt-ms", OPTION_UINT, &rtt_ms, "MS", "round-trip time to add (default 0)"},
        {"rtt-us", OPTION_UINT, &rtt_us, "US", "round-trip time in microseconds (adds to rtt-ms)"},
        {"rate-mbps", OPTION_UINT, &rate_mbps, "MBPS",
         "cap each direction of each connection, megabytes/s (0: none)"},
        {"shared-rate", OPTION_BOOL, &shared_rate, NULL,
         "the --rate-mbps cap is one line all connections share, as on a real link"},
        {"queue-ms", OPTION_UINT, &queue_ms, "MS",
         "with --rate-mbps: the line's FIFO queue holds MS of it (default 50); then the relay "
         "stops reading (no drops)"},
        {"queue-bytes", OPTION_SIZE, &queue_bytes, "BYTES",
         "the queue in bytes instead of --queue-ms (e.g. 256K)"},
        {"corrupt-every", OPTION_UINT, &corrupt_kib, "KIB",
         "flip one bit in every KIB KiB of large HTTP/2 DATA payload from the target "
         "(plaintext gRPC: ReadAt replies; 0: never)"},
        {"log-format", OPTION_STRING, &log_format, "text|json", "log lines (default text)"},
    };
    size_t n = sizeof specs / sizeof specs[0];
    char err[256];
    const struct program_info info = {"godwit-linkem",
                                      "a TCP relay that emulates RTT and bandwidth",
                                      "--listen ADDR:PORT --target ADDR:PORT [--rtt-ms MS]"};
    int r = options_parse(&info, specs, n, argc, argv, err, sizeof err);
    struct sockaddr_in listen_sa, target_sa;
    if (r == 0 && (!listen_addr || parse_address(listen_addr, &listen_sa) < 0 || !target_addr ||
                   parse_address(target_addr, &target_sa) < 0)) {
        snprintf(err, sizeof err, "--listen and --target need IPv4 ADDR:PORT values");
        r = -1;
    } else if (r == 0 && (queue_ms != QUEUE_MS_UNSET || queue_bytes) && !rate_mbps) {
        snprintf(err, sizeof err,
                 "--queue-ms and --queue-bytes need --rate-mbps (a line to queue for)");
        r = -1;
    } else if (r == 0 && queue_ms != QUEUE_MS_UNSET && queue_bytes) {
        snprintf(err, sizeof err, "--queue-ms and --queue-bytes are one setting: give one");
        r = -1;
    } else if (r == 0 && log_format && log_format_parse(log_format, &format) < 0) {
        snprintf(err, sizeof err, "--log-format must be text or json, not \"%s\"", log_format);
        r = -1;
    }
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "godwit-linkem: %s\n", err);
        options_free(specs, n);
        return r < 0 ? 2 : 0;
    }
    struct logger log;
    daemon_start(&log, "godwit-linkem", format == LOG_JSON ? "json" : "text");
    struct link link = {
        .delay_ns = ((uint64_t)rtt_ms * 1000 + rtt_us) * 500,
        .bytes_per_ns = rate_mbps * 1e6 / 1e9,
        .queue_ns =
            queue_bytes
                ? (uint64_t)((double)queue_bytes * 1e3 / rate_mbps)
                : (uint64_t)(queue_ms == QUEUE_MS_UNSET ? DEFAULT_QUEUE_MS : queue_ms) * 1000000,
        .shared_line = shared_rate,
        .segment_bytes = SEGMENT,
        .corrupt_every = (uint64_t)corrupt_kib * 1024};
    /* On a shared line a segment holds the others up for as long as it is
     * on it: at most 1 ms (as packets interleave on a real link). */
    if (shared_rate && rate_mbps && rate_mbps * 1000u < SEGMENT)
        link.segment_bytes = rate_mbps * 1000u < 1500 ? 1500 : rate_mbps * 1000u;
    pthread_mutex_init(&link.line_lock, NULL);
    int port, listener = listen_on(&listen_sa, &port);
    if (listener < 0) {
        log_error(&log, "cannot listen on %s: %s", listen_addr, strerror(errno));
        options_free(specs, n);
        return 1;
    }
    void *args[3] = {&link, &listener, &target_sa};
    pthread_t acceptor;
    pthread_create(&acceptor, NULL, accept_loop, args);
    log_info(&log, "%s -> %s, rtt %u.%03u ms, rate %s, queue %.1f ms%s", listen_addr, target_addr,
             rtt_ms + rtt_us / 1000, rtt_us % 1000,
             !rate_mbps    ? "unlimited"
             : shared_rate ? "capped, shared"
                           : "capped per connection",
             rate_mbps ? (double)link.queue_ns / 1e6 : 0.0,
             corrupt_kib ? ", corrupting DATA payload" : "");
    log_event(
        &log, "ready",
        json_pack("{s:s,s:i,s:s}", "listen", listen_addr, "port", port, "target", target_addr));
    for (;;) {
        int sig = daemon_wait_signal();
        if (sig == SIGUSR1) {
            atomic_store(&link.cut, true);
            atomic_fetch_add(&link.epoch, 1);
            log_info(&log, "link cut");
        } else if (sig == SIGUSR2) {
            atomic_store(&link.cut, false);
            log_info(&log, "link restored");
        } else {
            break;
        }
    }
    shutdown(listener, SHUT_RDWR);
    close(listener);
    pthread_join(acceptor, NULL);
    if (link.corrupt_every)
        log_info(&log, "flipped %llu bits", (unsigned long long)atomic_load(&link.flipped));
    options_free(specs, n);
    return 0;
}
