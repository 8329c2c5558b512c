/* SPDX-License-Identifier: MIT */
/* godwit-readat-bench: ReadAt throughput of a running seeder. CALLERS
 * threads spread over CHANNELS connections each read LENGTH-byte ranges
 * round-robin over the image for SECONDS; prints MB/s and calls/s as JSON.
 *
 *   godwit-readat-bench --seeder 127.0.0.1:1337 [--callers 8] [--channels 8] [--length 1M]
 */
#include "godwit/v1/seeder.pb-c.h"
#include "options.h"
#include "rpc-client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
    struct rpc_channel **channels;
    unsigned n_channels;
    uint64_t size;
    uint32_t length;
    uint64_t deadline_us;
    _Atomic uint64_t next_offset; /* shared cursor over the image */
    _Atomic uint64_t bytes, calls, failures;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct caller {
    struct bench *bench;
    unsigned index;
};

static void *run_caller(void *arg)
{
    struct caller *caller = arg;
    struct bench *b = caller->bench;
    struct rpc_channel *channel = b->channels[caller->index % b->n_channels];
    uint64_t span = b->size - b->size % b->length;
    while (now_us() < b->deadline_us) {
        Godwit__V1__ReadAtRequest request = GODWIT__V1__READ_AT_REQUEST__INIT;
        request.offset = atomic_fetch_add(&b->next_offset, b->length) % span;
        request.length = b->length;
        struct rpc_response reply;
        struct rpc_result result;
        if (rpc_call_raw(channel, "/godwit.v1.Seeder/ReadAt", &request.base, &reply, 30000,
                         &result) != GRPC_STATUS_OK) {
            atomic_fetch_add(&b->failures, 1);
            continue;
        }
        atomic_fetch_add(&b->bytes, reply.length);
        atomic_fetch_add(&b->calls, 1);
        rpc_response_free(&reply);
    }
    return NULL;
}

static int image_size(struct rpc_channel *channel, uint64_t *size, char *err, size_t errlen)
{
    Godwit__V1__InfoRequest request = GODWIT__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *response;
    struct rpc_result result;
    if (rpc_call(channel, "/godwit.v1.Seeder/Info", &request.base,
                 &godwit__v1__info_response__descriptor, &response, 10000,
                 &result) != GRPC_STATUS_OK) {
        snprintf(err, errlen, "Info failed: %.200s", result.message);
        return -1;
    }
    *size = ((Godwit__V1__InfoResponse *)response)->size;
    protobuf_c_message_free_unpacked(response, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    char *seeder = NULL;
    unsigned callers = 8, channels = 8, seconds = 5;
    uint64_t length = 1 << 20;
    struct option_spec specs[] = {
        {"seeder", OPTION_STRING, &seeder, "ADDR:PORT", "the seeder's gRPC address (required)"},
        {"callers", OPTION_UINT, &callers, "N", "concurrent callers (default 8)"},
        {"channels", OPTION_UINT, &channels, "N", "gRPC connections (default 8)"},
        {"length", OPTION_SIZE, &length, "BYTES", "bytes per ReadAt (default 1M)"},
        {"seconds", OPTION_UINT, &seconds, "S", "how long to run (default 5)"},
    };
    size_t n = sizeof specs / sizeof specs[0];
    char err[256];
    const struct program_info info = {"godwit-readat-bench", "measure ReadAt throughput",
                                      "--seeder ADDR:PORT [--callers N] [--length BYTES]"};
    int r = options_parse(&info, specs, n, argc, argv, err, sizeof err);
    if (r == 0 && (!seeder || !callers || !channels || !length || length > (16 << 20))) {
        snprintf(err, sizeof err, "--seeder is required; callers, channels >= 1; length <= 16M");
        r = -1;
    }
    struct bench b = {.n_channels = channels, .length = (uint32_t)length};
    b.channels = r == 0 ? calloc(channels, sizeof *b.channels) : NULL;
    for (unsigned i = 0; r == 0 && i < channels; i++) {
        struct rpc_channel_config config = {.target = seeder, .max_message = 17 << 20};
        b.channels[i] = rpc_channel_open(&config, err, sizeof err);
        r = b.channels[i] ? 0 : -1;
    }
    if (r == 0)
        r = image_size(b.channels[0], &b.size, err, sizeof err);
    if (r == 0 && b.size < length) {
        snprintf(err, sizeof err, "the image is smaller than --length");
        r = -1;
    }
    if (r != 0) {
        if (r < 0)
            fprintf(stderr, "godwit-readat-bench: %s\n", err);
        return r < 0 ? 1 : 0;
    }
    pthread_t *threads = calloc(callers, sizeof *threads);
    struct caller *args = calloc(callers, sizeof *args);
    uint64_t start = now_us();
    b.deadline_us = start + seconds * 1000000ull;
    for (unsigned i = 0; i < callers; i++) {
        args[i] = (struct caller){&b, i};
        pthread_create(&threads[i], NULL, run_caller, &args[i]);
    }
    for (unsigned i = 0; i < callers; i++)
        pthread_join(threads[i], NULL);
    double elapsed = (double)(now_us() - start) / 1e6;
    printf("{\"callers\":%u,\"channels\":%u,\"length\":%u,\"seconds\":%.2f,\"mb_per_s\":%.1f,"
           "\"calls_per_s\":%.0f,\"failures\":%llu}\n",
           callers, channels, b.length, elapsed, (double)atomic_load(&b.bytes) / elapsed / 1e6,
           (double)atomic_load(&b.calls) / elapsed, (unsigned long long)atomic_load(&b.failures));
    for (unsigned i = 0; i < channels; i++)
        rpc_channel_close(b.channels[i]);
    free(b.channels);
    free(threads);
    free(args);
    options_free(specs, n);
    return atomic_load(&b.failures) ? 1 : 0;
}
