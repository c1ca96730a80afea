/* apf_chunk.h - the byte queues of an APF channel: a singly linked list of copied chunks.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A channel keeps what the device sent until the owner reads it (rxq) and what the owner wrote
 * until the device's window lets it out (txq). Each queue is a head and a tail pointer; a chunk
 * is one allocation with its bytes, consumed from off. The bounds are the channel's business
 * (windows, write_queue_size): these only append and free. Loop thread only. */
#ifndef MPSD_APF_CHUNK_H
#define MPSD_APF_CHUNK_H

#include <stddef.h>
#include <stdint.h>

struct chan_chunk {
    struct chan_chunk *next;
    size_t len, off;
    uint8_t data[];
};

/* Frees every chunk of the queue and leaves it empty (*tail = head). */
void chan_chunks_free(struct chan_chunk **head, struct chan_chunk ***tail);

/* Appends a copy of data[0..len) at the tail: 0, or -ENOMEM (the queue is unchanged). */
int chan_chunk_append(struct chan_chunk ***tail, const void *data, size_t len);

#endif
