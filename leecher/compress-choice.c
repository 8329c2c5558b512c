/* SPDX-License-Identifier: MIT */
/* --compress auto's decision (compress-choice.h): the plain rate, per
 * 100 ms window of replies, under a lock. */
#include "compress-choice.h"

#include "cleanup.h"
#include "seeder-client.h"

enum { WINDOW_US = 100000 };

void compress_choice_init(struct compress_choice *c, int mode, double below)
{
    *c = (struct compress_choice){
        .always = mode == COMPRESS_ZSTD, .never = mode == COMPRESS_OFF, .below = below};
    pthread_mutex_init(&c->lock, NULL);
}

void compress_choice_destroy(struct compress_choice *c)
{
    pthread_mutex_destroy(&c->lock);
}

bool compress_choice_wanted(struct compress_choice *c)
{
    LOCK_FOR_SCOPE(&c->lock);
    return c->always || (!c->never && c->plain_rate > 0 && c->plain_rate < c->below);
}

void compress_choice_note(struct compress_choice *c, uint64_t wire_bytes, bool asked,
                          uint64_t now_us)
{
    LOCK_FOR_SCOPE(&c->lock);
    if (asked || c->always || c->never)
        return;
    if (c->window_start == 0) { /* the first reply opens the first window */
        c->window_start = now_us;
        return;
    }
    c->window_bytes += wire_bytes;
    uint64_t span = now_us - c->window_start;
    if (span < WINDOW_US)
        return;
    double rate = (double)c->window_bytes * 1e6 / (double)span;
    c->plain_rate = rate > c->plain_rate * 0.95 ? rate : c->plain_rate * 0.95;
    c->window_start = now_us, c->window_bytes = 0;
}

double compress_choice_plain_rate(struct compress_choice *c)
{
    LOCK_FOR_SCOPE(&c->lock);
    return c->plain_rate;
}
