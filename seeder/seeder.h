/* SPDX-License-Identifier: MIT */
/* The source side's shared state: what main wires together and what the
 * NBD backend and the gRPC service read. */
#ifndef GODWIT_SEEDER_H
#define GODWIT_SEEDER_H

#include <stdbool.h>
#include <stdint.h>

#include "chunk.h"
#include "image-file.h"
#include "metrics.h"
#include "tracker.h"

struct compressor;
struct logger;
struct nbd_backend;
struct rpc_service;

/* Largest ReadAt, bytes (documented in README and seeder.proto). */
#define SEEDER_MAX_READ CHUNK_MAX_READ

/* The zstd level of compressed ReadAt replies (docs/benchmarks.md). */
#define SEEDER_ZSTD_LEVEL 1

/* Set up by main before any thread starts and read-only afterwards; the
 * tracker does its own locking. */
struct seeder {
    struct image_file image;
    struct chunk_geometry geo;
    struct tracker *tracker; /* owns the identity (Abort draws a new one) */
    struct logger *log;
    bool exit_on_complete;         /* raise SIGTERM once every session called Complete */
    unsigned max_sessions;         /* for the sentence that refuses one more */
    struct compressor *compressor; /* ReadAt's zstd (thread-safe: a pool of contexts) */

    /* Statistics for /metrics: relaxed atomics, any thread (histogram
     * buckets set by main before the threads start). */
    struct metric_counter served_bytes;    /* ReadAt payload bytes sent (as the image holds them) */
    struct metric_counter sent_data_bytes; /* their data fields' bytes: less zeroes, compressed */
    struct metric_histogram read_at_us;    /* ReadAt handler time, every call */
};

/* The NBD backend through which the local app reads and writes the image. */
void seeder_backend(struct seeder *seeder, struct nbd_backend *backend);

/* metrics.c: the seeder's /metrics, on ADDRESS (HOST:PORT, checked); the
 * bound port in *PORT. NULL with one sentence in ERR. */
struct metrics_server *seeder_metrics_start(struct seeder *seeder, const char *address, int *port,
                                            char *err, size_t errlen);

/* The godwit.v1.Seeder gRPC service. */
void seeder_service(struct seeder *seeder, struct rpc_service *service);

#endif
