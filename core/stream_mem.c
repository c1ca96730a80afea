/* stream_mem.c - an in-memory stream pair: what one end writes the other end reads.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Used where a stream is needed without a socket (the tunnel tests run a whole APF session
 * over one). Delivery is always deferred to the loop, like a socket's, so a writer's call
 * stack never re-enters the reader. Bytes count as sent when the reader has taken them, so
 * read_stop on one end is backpressure on the other. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mem_chunk {
    struct mem_chunk *next;
    size_t len, off;
    char data[];
};

struct mem_pair;

struct mem_end {
    mps_stream base;
    struct mem_pair *pair;
    struct mem_end *peer;
    struct mem_chunk *head, **tail; /* written by this end, not yet read by the peer */
    bool reading;
    bool shut;     /* no more writes: the peer gets EOF after the queue */
    bool eof_sent; /* this end's reader got EOF */
    bool freed;    /* the owner is done with this end */
    bool scheduled;
    struct loop_call pump_call, close_call;
};

struct mem_pair {
    struct mem_end end[2];
};

static void
mem_schedule(struct mem_end *reader)
{
    if (reader->scheduled)
        return;
    reader->scheduled = true;
    loop_call_queue(reader->base.loop, &reader->pump_call);
}

static void
mem_pair_maybe_free(struct mem_pair *p)
{
    for (int i = 0; i < 2; i++)
        if (!p->end[i].freed || p->end[i].scheduled)
            return;
    for (int i = 0; i < 2; i++) {
        struct mem_chunk *c = p->end[i].head;
        while (c) {
            struct mem_chunk *n = c->next;
            free(c);
            c = n;
        }
    }
    free(p);
}

/* Deliver what the writer (reader->peer) queued to reader, while reader keeps reading. */
static void
mem_pump(struct loop_call *call)
{
    struct mem_end *reader = loop_container_of(call, struct mem_end, pump_call);
    struct mem_end *writer = reader->peer;
    reader->scheduled = false;
    while (reader->reading && !reader->base.closing && writer->head) {
        struct mem_chunk *c = writer->head;
        writer->head = c->next;
        if (!writer->head)
            writer->tail = &writer->head;
        size_t len = c->len - c->off;
        if (!writer->base.closing)
            stream_sent(&writer->base, len);
        stream_deliver(&reader->base, c->data + c->off, len, 0);
        free(c);
    }
    if (!writer->head && (writer->shut || writer->base.closing) && !reader->eof_sent &&
        reader->reading && !reader->base.closing) {
        reader->eof_sent = true;
        stream_deliver(&reader->base, NULL, 0, MPS_EOF);
    }
    mem_pair_maybe_free(reader->pair);
}

static int
mem_read_start(mps_stream *s)
{
    struct mem_end *e = (struct mem_end *)s;
    e->reading = true;
    mem_schedule(e);
    return 0;
}

static int
mem_read_stop(mps_stream *s)
{
    ((struct mem_end *)s)->reading = false;
    return 0;
}

static int
mem_write(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    struct mem_end *e = (struct mem_end *)s;
    if (e->shut || e->peer->base.closing)
        return -EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    if (total == 0)
        return 0;
    struct mem_chunk *c = malloc(sizeof(*c) + total);
    if (!c)
        return -ENOMEM;
    c->next = NULL;
    c->len = total;
    c->off = 0;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(c->data + off, iov[i].base, iov[i].len);
        off += iov[i].len;
    }
    *e->tail = c;
    e->tail = &c->next;
    mem_schedule(e->peer);
    return 0;
}

static int
mem_shutdown(mps_stream *s)
{
    struct mem_end *e = (struct mem_end *)s;
    e->shut = true;
    mem_schedule(e->peer);
    return 0;
}

static void
mem_closed(struct loop_call *call)
{
    struct mem_end *e = loop_container_of(call, struct mem_end, close_call);
    stream_closed(&e->base, 0);
}

static void
mem_close(mps_stream *s)
{
    struct mem_end *e = (struct mem_end *)s;
    e->reading = false;
    /* The peer reads what is queued, then EOF; its own queue to us is dropped. */
    struct mem_chunk *c = e->peer->head;
    while (c) {
        struct mem_chunk *n = c->next;
        free(c);
        c = n;
    }
    e->peer->head = NULL;
    e->peer->tail = &e->peer->head;
    stream_fail_writes(&e->peer->base, -EPIPE);
    mem_schedule(e->peer);
    loop_call_queue(s->loop, &e->close_call);
}

static void
mem_free(mps_stream *s)
{
    struct mem_end *e = (struct mem_end *)s;
    e->freed = true;
    mem_pair_maybe_free(e->pair);
}

static const struct stream_ops mem_ops = {
    .kind = "mem",
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .write = mem_write,
    .shutdown = mem_shutdown,
    .close = mem_close,
    .free = mem_free,
};

int
mem_stream_pair(uv_loop_t *loop, mps_stream **a_r, mps_stream **b_r)
{
    struct mem_pair *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    for (int i = 0; i < 2; i++) {
        struct mem_end *e = &p->end[i];
        stream_init(&e->base, &mem_ops, loop);
        e->pair = p;
        e->peer = &p->end[1 - i];
        e->tail = &e->head;
        loop_call_init(&e->pump_call, mem_pump);
        loop_call_init(&e->close_call, mem_closed);
    }
    strcpy(p->end[0].base.peer, "mem:a");
    strcpy(p->end[1].base.peer, "mem:b");
    strcpy(p->end[0].base.peer_host, "mem");
    strcpy(p->end[1].base.peer_host, "mem");
    *a_r = &p->end[0].base;
    *b_r = &p->end[1].base;
    return 0;
}
