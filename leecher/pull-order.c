/* SPDX-License-Identifier: MIT */
/* The default pull order: sequential, with read-ahead after on-demand reads. */
#include "pull-order.h"

#include "leecher.h"

enum { READ_AHEAD_CHUNKS = 4 };

static unsigned sequential_claim(struct leecher *l, unsigned max, uint64_t *first,
                                 uint32_t *tickets)
{
    uint64_t n = l->geo.chunks;
    for (uint64_t step = 0; step < n; step++) {
        uint64_t c = (l->cursor + step) % n;
        if (!chunk_map_claim(l->map, c, &tickets[0]))
            continue;
        unsigned count = 1;
        while (count < max && c + count < n && chunk_map_claim(l->map, c + count, &tickets[count]))
            count++;
        *first = c;
        l->cursor = (c + count) % n;
        return count;
    }
    return 0;
}

static void sequential_on_demand(struct leecher *l, uint64_t chunk)
{
    for (uint64_t next = chunk + 1; next < l->geo.chunks && next <= chunk + READ_AHEAD_CHUNKS;
         next++)
        chunk_queue_push(&l->urgent, next);
}

const struct pull_order pull_order_sequential = {
    .name = "sequential",
    .claim = sequential_claim,
    .on_demand = sequential_on_demand,
};
