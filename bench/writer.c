/* SPDX-License-Identifier: MIT */
/* godwit-writer: a stand-in workload. Writes pseudo-random blocks at random
 * offsets (aligned and unaligned, some repeated) through an NBD export until
 * it is stopped or its time is up, paced to a rate; prints what it did.
 *
 *   godwit-writer --socket /run/seeder.sock [--rate-mbps 20] [--block 4K] [--seconds 10]
 */
#include "daemon.h"
#include "options.h"

#include <libnbd.h>
#include <signal.h>
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
};

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
    };
    size_t n = sizeof specs / sizeof specs[0];
    char err[256];
    const struct program_info info = {"godwit-writer", "keep writing to an NBD export",
                                      "--socket PATH [--rate-mbps N] [--seconds S]"};
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
    struct nbd_handle *nbd = nbd_create();
    if (!nbd || nbd_connect_unix(nbd, o.socket) < 0) {
        fprintf(stderr, "godwit-writer: cannot connect to %s: %s\n", o.socket, nbd_get_error());
        return 1;
    }
    uint64_t size = (uint64_t)nbd_get_size(nbd), rng = o.seed, written = 0, writes = 0;
    char *buf = malloc(o.block);
    uint64_t start = now_us(), deadline = o.seconds ? start + o.seconds * 1000000ull : 0;
    int status = 0;
    while (!stop && (!deadline || now_us() < deadline) && (!o.count || writes < o.count)) {
        for (size_t i = 0; i < o.block; i += 8) {
            uint64_t word = next_random(&rng);
            memcpy(buf + i, &word, o.block - i < 8 ? o.block - i : 8);
        }
        uint64_t offset = pick_offset(&rng, size, o.block, o.hot_percent);
        if (nbd_pwrite(nbd, buf, o.block, offset, 0) < 0) {
            fprintf(stderr, "godwit-writer: write at %llu: %s\n", (unsigned long long)offset,
                    nbd_get_error());
            status = 1;
            break;
        }
        written += o.block, writes++;
        uint64_t due = start + written * 1000000ull / ((uint64_t)o.rate_mbps * 1000000ull + 1);
        uint64_t now = now_us();
        if (o.rate_mbps && due > now) {
            uint64_t wait = due - now;
            nanosleep(&(struct timespec){(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000},
                      NULL);
        }
    }
    nbd_shutdown(nbd, 0);
    nbd_close(nbd);
    printf("{\"event\":\"writer_done\",\"writes\":%llu,\"bytes\":%llu,\"seconds\":%.2f}\n",
           (unsigned long long)writes, (unsigned long long)written, (now_us() - start) / 1e6);
    free(buf);
    options_free(specs, n);
    return status;
}
