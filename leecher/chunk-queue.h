/* SPDX-License-Identifier: MIT */
/* A FIFO of chunk indices (read-ahead after on-demand reads, the dirty
 * list at Finalize). Not thread-safe: its owner's lock guards it. */
#ifndef GODWIT_LEECHER_CHUNK_QUEUE_H
#define GODWIT_LEECHER_CHUNK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A ring buffer that doubles when full; all zeros is an empty queue. */
struct chunk_queue {
    uint64_t *items;
    size_t head, count, room;
};

/* Appends CHUNK; -1 with errno ENOMEM (the queue is then unchanged). */
int chunk_queue_push(struct chunk_queue *q, uint64_t chunk);
/* Takes the oldest chunk into *CHUNK; false if the queue is empty. */
bool chunk_queue_pop(struct chunk_queue *q, uint64_t *chunk);
void chunk_queue_free(struct chunk_queue *q);

#endif
