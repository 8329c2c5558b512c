/* SPDX-License-Identifier: MIT */
/* godwit-writer: a stand-in workload. Writes pseudo-random blocks at random
 * offsets (aligned and unaligned, some repeated) through an NBD export until
 * it is stopped or its time is up, paced to a rate; prints what it did.
 *
 *   godwit-writer --socket /run/seeder.sock [--rate-mbps 20] [--block 4K] [--seconds 10]
 *
 * A failed write ends it (exit 1) unless --retry is given: then it waits
 * (0.1 s, doubling up to 10 s), reconnects if the connection is gone and
 * tries the same write again, so a frozen or restarting seeder makes it
 * wait instead of exiting into a container restart loop.
 */
#include "daemon.h"
#include "options.h"

#include <libnbd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct writer_options {
    char *socket;
    unsigned rate_mbps;
    uint64_t block;
    unsigned seconds;
    unsigned seed;
    unsigned hot_percent; /* share of writes that go to a small hot set */
    unsigned count;       /* stop after this many writes; 0: no limit */
    bool retry;           /* back off and retry failed writes instead of exiting */
};

enum { BACKOFF_FIRST_MS = 100, BACKOFF_MAX_MS = 10000 };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 11;
}

/* Picks an offset: HOT_PERCENT of writes hit the first 1/64 of the image
 * (re-dirtying the same chunks), the rest anywhere; a third unaligned. */
static uint64_t pick_offset(uint64_t *rng, uint64_t size, uint64_t block, unsigned hot_percent)
{
    uint64_t span = next_random(rng) % 100 < hot_percent ? size / 64 : size;
    if (span <= block)
        span = size;
    uint64_t offset = next_random(rng) % (span - block + 1);
    return next_random(rng) % 3 == 0 ? offset : offset & ~(uint64_t)4095;
}

/* Set by SIGINT/SIGTERM: the one way a signal handler may talk to the loop. */
static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void sleep_us(uint64_t us)
{
    nanosleep(&(struct timespec){(time_t)(us / 1000000), (long)(us % 1000000) * 1000}, NULL);
}

/* The connection and what the write loop keeps between writes (main's). */
struct writer_state {
    struct nbd_handle *nbd; /* NULL while disconnected (--retry) */
    uint64_t size;
    unsigned backoff_ms;   /* the last wait after a failure; 0 after a success */
    uint64_t pace_start;   /* the rate is kept from here (reset after a wait) */
    uint64_t pace_written; /* bytes written since pace_start */
};

/* Connects W to the export at SOCKET; false with the reason logged. */
static bool writer_connect(struct writer_state *w, const char *socket)
{
    w->nbd = nbd_create();
    if (w->nbd && nbd_connect_unix(w->nbd, socket) == 0) {
        w->size = (uint64_t)nbd_get_size(w->nbd);
        return true;
    }
    fprintf(stderr, "godwit-writer: cannot connect to %s: %s\n", socket, nbd_get_error());
    if (w->nbd)
        nbd_close(w->nbd);
    w->nbd = NULL;
    return false;
}

/* After a failure with --retry: waits, then reconnects if the connection is
 * gone. Returns false once a stop signal arrived. */
static bool back_off(struct writer_state *w, const char *socket)
{
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (w->backoff_ms > BACKOFF_MAX_MS)
        w->backoff_ms = BACKOFF_MAX_MS;
    fprintf(stderr, "godwit-writer: retrying in %u ms\n", w->backoff_ms);
    sleep_us(w->backoff_ms * 1000ull);
    if (w->nbd && !nbd_aio_is_ready(w->nbd)) {
        nbd_close(w->nbd);
        w->nbd = NULL;
    }
    if (!stop && !w->nbd)
        writer_connect(w, socket);
    w->pace_start = now_us(), w->pace_written = 0;
    return !stop;
}

/* Writes BUF at OFFSET; with --retry keeps trying (backing off) until it
 * succeeds, a stop signal arrives or the connection cannot be made again.
 * Returns whether the block was written. */
static bool write_block(struct writer_state *w, const struct writer_options *o, const char *buf,
                        uint64_t offset)
{
    while (nbd_pwrite(w->nbd, buf, o->block, offset, 0) < 0) {
        fprintf(stderr, "godwit-writer: write at %llu: %s\n", (unsigned long long)offset,
                nbd_get_error());
        if (!o->retry || !back_off(w, o->socket) || !w->nbd)
            return false;
    }
    w->backoff_ms = 0;
    w->pace_written += o->block;
    return true;
}

/* Sleeps as long as it takes to keep the writes at RATE_MBPS. */
static void pace(const struct writer_state *w, unsigned rate_mbps)
{
    uint64_t due =
        w->pace_start + w->pace_written * 1000000ull / ((uint64_t)rate_mbps * 1000000ull + 1);
    uint64_t now = now_us();
    if (rate_mbps && due > now)
        sleep_us(due - now);
}

/* Fills BUF with the next pseudo-random bytes. */
static void fill_block(char *buf, uint64_t block, uint64_t *rng)
{
    for (size_t i = 0; i < block; i += 8) {
        uint64_t word = next_random(rng);
        memcpy(buf + i, &word, block - i < 8 ? block - i : 8);
    }
}

/* The write loop: returns 0 when stopped or done, 1 after a failed write
 * without --retry. */
static int write_until_done(struct writer_state *w, const struct writer_options *o, char *buf)
{
    uint64_t rng = o->seed, written = 0, writes = 0, start = now_us();
    uint64_t deadline = o->seconds ? start + o->seconds * 1000000ull : 0;
    int status = 0;
    w->pace_start = start;
    while (!stop && (!deadline || now_us() < deadline) && (!o->count || writes < o->count)) {
        if (!w->nbd) {
            back_off(w, o->socket);
            continue;
        }
        fill_block(buf, o->block, &rng);
        uint64_t offset = pick_offset(&rng, w->size, o->block, o->hot_percent);
        if (!write_block(w, o, buf, offset)) {
            if (!o->retry) {
                status = 1;
                break;
            }
            continue;
        }
        written += o->block, writes++;
        pace(w, o->rate_mbps);
    }
    printf("{\"event\":\"writer_done\",\"writes\":%llu,\"bytes\":%llu,\"seconds\":%.2f}\n",
           (unsigned long long)writes, (unsigned long long)written, (now_us() - start) / 1e6);
    return status;
}

int main(int argc, char **argv)
{
    struct writer_options o = {
        .rate_mbps = 20, .block = 4096, .seconds = 0, .seed = 1, .hot_percent = 50};
    struct option_spec specs[] = {
        {"socket", OPTION_STRING, &o.socket, "PATH", "NBD unix socket to write to (required)"},
        {"rate-mbps", OPTION_UINT, &o.rate_mbps, "MBPS", "megabytes per second (default 20)"},
        {"block", OPTION_SIZE, &o.block, "BYTES", "bytes per write (default 4K)"},
        {"seconds", OPTION_UINT, &o.seconds, "S", "stop after S seconds (default: at SIGTERM)"},
        {"seed", OPTION_UINT, &o.seed, "N", "random seed (default 1)"},
        {"hot-percent", OPTION_UINT, &o.hot_percent, "P", "share of writes to a hot 1/64 (50)"},
        {"count", OPTION_UINT, &o.count, "N", "stop after N writes (default: no limit)"},
        {"retry", OPTION_BOOL, &o.retry, NULL,
         "after a failed write wait (0.1 s doubling to 10 s), reconnect and retry"},
    };
    size_t n = sizeof specs / sizeof specs[0];
    char err[256];
    const struct program_info info = {"godwit-writer", "keep writing to an NBD export",
                                      "--socket PATH [--rate-mbps N] [--seconds S] [--retry]"};
    int r = options_parse(&info, specs, n, argc, argv, err, sizeof err);
    if (r == 0 && (!o.socket || o.block == 0 || o.block > (32 << 20))) {
        snprintf(err, sizeof err, "--socket is required and --block must be 1 byte to 32M");
        r = -1;
    }
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "godwit-writer: %s\n", err);
        options_free(specs, n);
        return r < 0 ? 2 : 0;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct writer_state w = {0};
    char *buf = malloc(o.block);
    int status = 1;
    if (!buf)
        fprintf(stderr, "godwit-writer: cannot allocate a %llu-byte block\n",
                (unsigned long long)o.block);
    else if (writer_connect(&w, o.socket) || o.retry)
        status = write_until_done(&w, &o, buf);
    if (w.nbd) {
        nbd_shutdown(w.nbd, 0);
        nbd_close(w.nbd);
    }
    free(buf);
    options_free(specs, n);
    return status;
}
