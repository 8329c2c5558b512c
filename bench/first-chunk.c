/* SPDX-License-Identifier: MIT */
/* godwit-first-chunk: first-byte latency of reads through an NBD export,
 * e.g. the leecher's right after Finalize, when most chunks are remote.
 * Reads LENGTH bytes (default 4 KiB) at COUNT chunk offsets spread over
 * the image (each a chunk not read before; a LENGTH over a chunk spans the
 * next ones too), then the same offsets again (now local); prints p50 and
 * p99 of both as JSON.
 *
 *   godwit-first-chunk --socket /run/dest.sock --chunk-size 256K [--count 50] [--length 4K]
 */
#include "options.h"

#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times a read of LENGTH bytes into BUF at each offset; fills SAMPLES. -1
 * on a read error. */
static int time_reads(struct nbd_handle *nbd, const uint64_t *offsets, unsigned n, char *buf,
                      size_t length, double *samples)
{
    for (unsigned i = 0; i < n; i++) {
        double start = now_us();
        if (nbd_pread(nbd, buf, length, offsets[i], 0) < 0) {
            fprintf(stderr, "godwit-first-chunk: read at %llu: %s\n",
                    (unsigned long long)offsets[i], nbd_get_error());
            return -1;
        }
        samples[i] = now_us() - start;
    }
    qsort(samples, n, sizeof *samples, compare);
    return 0;
}

struct first_chunk_options {
    char *socket;
    uint64_t chunk, length;
    unsigned count;
};

static int check_options(const void *ctx, char *err, size_t errlen)
{
    const struct first_chunk_options *o = ctx;
    if (o->socket && o->count && o->chunk && o->length && o->length <= (32u << 20))
        return 0;
    snprintf(err, errlen, "--socket is required; --count and --chunk-size >= 1; --length 1 to 32M");
    return -1;
}

int main(int argc, char **argv)
{
    struct first_chunk_options o = {NULL, 256 << 10, 4096, 50};
    struct option_spec specs[] = {
        {"socket", OPTION_STRING, &o.socket, "PATH", "the NBD export to read (required)"},
        {"chunk-size", OPTION_SIZE, &o.chunk, "BYTES", "the chunk size (default 256K)"},
        {"count", OPTION_UINT, &o.count, "N", "reads (default 50)"},
        {"length", OPTION_SIZE, &o.length, "BYTES", "bytes per read (default 4K)"},
    };
    const struct program_info info = {
        "godwit-first-chunk", "first-byte latency of NBD reads",
        "--socket PATH [--chunk-size BYTES] [--count N] [--length B]"};
    int status = options_parse_main(&info, specs, 4, argc, argv, check_options, &o);
    if (status >= 0)
        return status;
    const char *socket = o.socket;
    uint64_t chunk = o.chunk;
    unsigned count = o.count;
    struct nbd_handle *nbd = nbd_create();
    if (!nbd || nbd_connect_unix(nbd, socket) < 0) {
        fprintf(stderr, "godwit-first-chunk: cannot connect to %s: %s\n", socket, nbd_get_error());
        return 1;
    }
    uint64_t span = (o.length + chunk - 1) / chunk; /* chunks one read touches */
    uint64_t chunks = (uint64_t)nbd_get_size(nbd) / chunk;
    chunks = chunks > span ? chunks - span + 1 : 1; /* where a read may start */
    count = count > chunks ? (unsigned)chunks : count;
    uint64_t *offsets = malloc(count * sizeof *offsets);
    double *remote = malloc(count * sizeof *remote), *local = malloc(count * sizeof *local);
    char *buf = malloc(o.length);
    if (!offsets || !remote || !local || !buf) {
        fprintf(stderr, "godwit-first-chunk: no memory for %u samples\n", count);
        return 1;
    }
    for (unsigned i = 0; i < count; i++) /* from the end backwards: far from the pullers */
        offsets[i] = (chunks - 1 - (uint64_t)i * (chunks / count)) * chunk;
    int r = time_reads(nbd, offsets, count, buf, o.length, remote) ||
            time_reads(nbd, offsets, count, buf, o.length, local);
    if (r == 0)
        printf("{\"count\":%u,\"length\":%llu,\"first_read_us\":{\"p50\":%.0f,\"p99\":%.0f},"
               "\"local_read_us\":{\"p50\":%.0f,\"p99\":%.0f}}\n",
               count, (unsigned long long)o.length, remote[count / 2], remote[(count * 99) / 100],
               local[count / 2], local[(count * 99) / 100]);
    nbd_close(nbd);
    free(offsets);
    free(remote);
    free(local);
    free(buf);
    options_free(specs, 4);
    return r ? 1 : 0;
}
