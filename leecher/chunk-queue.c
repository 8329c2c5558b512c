/* SPDX-License-Identifier: MIT */
/* The chunk FIFO: a ring buffer of chunk indices that doubles when full. */
#include "chunk-queue.h"

#include <errno.h>
#include <stdlib.h>

/* Moves Q's items, oldest first, into a new array of ROOM entries. */
static int grow(struct chunk_queue *q, size_t room)
{
    uint64_t *items = malloc(room * sizeof *items);
    if (!items) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) % q->room];
    free(q->items);
    q->items = items, q->head = 0, q->room = room;
    return 0;
}

int chunk_queue_push(struct chunk_queue *q, uint64_t chunk)
{
    if (q->count == q->room && grow(q, q->room ? 2 * q->room : 64) < 0)
        return -1;
    q->items[(q->head + q->count++) % q->room] = chunk;
    return 0;
}

bool chunk_queue_pop(struct chunk_queue *q, uint64_t *chunk)
{
    if (q->count == 0)
        return false;
    *chunk = q->items[q->head];
    q->head = (q->head + 1) % q->room;
    q->count--;
    return true;
}

void chunk_queue_free(struct chunk_queue *q)
{
    free(q->items);
    *q = (struct chunk_queue){0};
}
