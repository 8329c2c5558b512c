/* SPDX-License-Identifier: MIT */
/* The pull order the leecher asks: three queues in front of a heuristic,
 * and the skip of a heuristic's scan while nothing turned REMOTE. */
#include "pull-order.h"

#include "chunk-map.h"
#include "chunk-queue.h"

#include <errno.h>
#include <stdlib.h>

struct pull_order {
    const struct pull_order_type *type;
    void *self; /* the heuristic's state */
    struct chunk_map *map;
    struct chunk_queue rest;   /* chunks a read fetched only some pages of */
    struct chunk_queue urgent; /* chunks the heuristic put first (read-ahead) */
    struct chunk_queue dirty;  /* chunks the freeze reported */
    uint64_t scanned_empty;    /* 1 + chunk_map_remote_events when the heuristic last
                                  found nothing to claim; 0: not yet */
};

struct pull_order *pull_order_open(const struct pull_order_type *type, struct chunk_map *map,
                                   uint64_t chunks)
{
    struct pull_order *order = calloc(1, sizeof *order);
    if (!order) {
        errno = ENOMEM;
        return NULL;
    }
    *order = (struct pull_order){.type = type, .map = map};
    if (!(order->self = type->open(map, chunks))) {
        free(order);
        return NULL;
    }
    return order;
}

void pull_order_close(struct pull_order *order)
{
    if (!order)
        return;
    order->type->close(order->self);
    chunk_queue_free(&order->rest);
    chunk_queue_free(&order->urgent);
    chunk_queue_free(&order->dirty);
    free(order);
}

/* A heuristic only claims REMOTE chunks, so once it found none it is not
 * asked again (its scan is O(chunks), under the leecher's lock) until one
 * turns REMOTE. */
unsigned pull_order_claim(struct pull_order *order, unsigned max, uint64_t *first,
                          uint32_t *tickets)
{
    uint64_t c;
    while (chunk_queue_pop(&order->rest, &c) || chunk_queue_pop(&order->urgent, &c) ||
           chunk_queue_pop(&order->dirty, &c))
        if (chunk_map_claim(order->map, c, &tickets[0])) {
            *first = c;
            return 1;
        }
    uint64_t events = chunk_map_remote_events(order->map);
    if (order->scanned_empty == events + 1)
        return 0;
    unsigned count = order->type->claim(order->self, max, first, tickets);
    if (count == 0)
        order->scanned_empty = events + 1;
    return count;
}

void pull_order_on_demand(struct pull_order *order, uint64_t chunk)
{
    order->type->on_demand(order->self, chunk, &order->urgent);
}

/* A failed push only loses the priority: the chunk is REMOTE, so the
 * heuristic finds it. A chunk pushed twice (two reads of it) is claimed
 * once; the second pop finds it claimed or local and moves on. */
void pull_order_put_rest(struct pull_order *order, uint64_t chunk)
{
    (void)chunk_queue_push(&order->rest, chunk);
}

/* A failed push only loses the priority: the chunk is REMOTE, so the
 * heuristic finds it. */
void pull_order_put_first(struct pull_order *order, uint64_t chunk)
{
    (void)chunk_queue_push(&order->dirty, chunk);
}
