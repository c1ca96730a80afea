/* apf_chunk.c - the byte queues of an APF channel (see apf_chunk.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Moved out of apf_channel.c: a channel's receive and transmit queues are lists of chunks, each
 * one malloc holding a copy of the bytes; the channel bounds them by its windows, this file only
 * appends to and frees them. */
#include "apf_chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
chan_chunks_free(struct chan_chunk **head, struct chan_chunk ***tail)
{
    struct chan_chunk *c = *head;
    while (c) {
        struct chan_chunk *n = c->next;
        free(c);
        c = n;
    }
    *head = NULL;
    *tail = head;
}

int
chan_chunk_append(struct chan_chunk ***tail, const void *data, size_t len)
{
    struct chan_chunk *c = malloc(sizeof(*c) + len);
    if (!c)
        return -ENOMEM;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    memcpy(c->data, data, len);
    **tail = c;
    *tail = &c->next;
    return 0;
}
