/* SPDX-License-Identifier: MIT */
/* --compress auto's decision: whether ReadAt asks the seeder for zstd.
 * The link is measured uncompressed (the bytes its plain replies delivered
 * per 100 ms, a slowly decaying maximum); once that rate is known and below
 * the threshold, every later ReadAt asks for compression, and the plain
 * rate, no longer measured, stays as it was: compressed replies say nothing
 * about the link (highly compressible data is slow on the wire on any
 * link). */
#ifndef GODWIT_LEECHER_COMPRESS_CHOICE_H
#define GODWIT_LEECHER_COMPRESS_CHOICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Everything is owned by lock (a leaf: no other lock is taken under it). */
struct compress_choice {
    pthread_mutex_t lock;
    bool always, never;    /* --compress zstd, off */
    double below;          /* auto: compress while the plain rate is under this, bytes/s */
    uint64_t window_start; /* microseconds: the current window; 0 before a plain reply */
    uint64_t window_bytes; /* wire bytes of plain replies in it */
    double plain_rate;     /* bytes/s; 0 before a whole window */
};

/* MODE is enum seeder_compress; BELOW auto's threshold in bytes/s. */
void compress_choice_init(struct compress_choice *c, int mode, double below);
void compress_choice_destroy(struct compress_choice *c);
/* Whether the next ReadAt asks for compression. */
bool compress_choice_wanted(struct compress_choice *c);
/* A reply of WIRE_BYTES came in at NOW_US; ASKED: its request asked for
 * compression (it does not measure the link). */
void compress_choice_note(struct compress_choice *c, uint64_t wire_bytes, bool asked,
                          uint64_t now_us);
/* The plain rate measured, bytes/s (0 before one). */
double compress_choice_plain_rate(struct compress_choice *c);

#endif
