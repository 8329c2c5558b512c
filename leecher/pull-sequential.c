/* SPDX-License-Identifier: MIT */
/* The default pull order: sequential from a cursor, with read-ahead after
 * on-demand reads. */
#include "pull-order.h"

#include "chunk-map.h"
#include "chunk-queue.h"

#include <errno.h>
#include <stdlib.h>

enum { READ_AHEAD_CHUNKS = 4 };

struct sequential {
    struct chunk_map *map;
    uint64_t chunks;
    uint64_t cursor; /* where the next scan starts */
};

static void *sequential_open(struct chunk_map *map, uint64_t chunks)
{
    struct sequential *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    *s = (struct sequential){map, chunks, 0};
    return s;
}

static unsigned sequential_claim(void *self, unsigned max, uint64_t *first, uint32_t *tickets)
{
    struct sequential *s = self;
    uint64_t n = s->chunks;
    for (uint64_t step = 0; step < n; step++) {
        uint64_t c = (s->cursor + step) % n;
        if (!chunk_map_claim(s->map, c, &tickets[0]))
            continue;
        unsigned count = 1;
        while (count < max && c + count < n && chunk_map_claim(s->map, c + count, &tickets[count]))
            count++;
        *first = c;
        s->cursor = (c + count) % n;
        return count;
    }
    return 0;
}

static void sequential_on_demand(void *self, uint64_t chunk, struct chunk_queue *first)
{
    struct sequential *s = self;
    for (uint64_t next = chunk + 1; next < s->chunks && next <= chunk + READ_AHEAD_CHUNKS; next++)
        if (chunk_queue_push(first, next) < 0)
            break;
}

static void sequential_close(void *self)
{
    free(self);
}

const struct pull_order_type pull_order_sequential = {
    .name = "sequential",
    .open = sequential_open,
    .claim = sequential_claim,
    .on_demand = sequential_on_demand,
    .close = sequential_close,
};
