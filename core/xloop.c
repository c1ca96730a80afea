/* xloop.c - a stream pair across two event loops: two SPSC rings and two uv_async (xloop.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Ring positions are byte counts since the start (64 bits: they never wrap); the buffer
 * offset is the position modulo the window. The writer owns head, the reader owns tail.
 * Bytes are published with a release store of head and taken after an acquire load of it;
 * space is handed back the same way through tail.
 *
 * Wakeups have to decide "does the other side sleep?" from a store of one's own position
 * followed by a load of the other's (the writer: store head, load tail; the reader: store
 * tail, load head or writer_waits). Release/acquire does not order a store before a later
 * load, so these stores and loads are seq_cst: of the two sides, at least one sees the
 * other's store, so either the writer wakes the reader or the reader sees the new bytes
 * itself (and the same for space). A standalone fence would do too, but ThreadSanitizer
 * does not understand fences.
 *
 * The only state both threads touch: the rings' atomics and bytes (each byte range has one
 * owner at a time, handed over by head and tail), the reference count, and each end's
 * uv_async_t with its async_open flag under the lock, so that no wakeup is ever sent to a
 * handle that is closing or on a loop that is gone. Everything else in an end is its own
 * loop thread's. */
#include "xloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SC memory_order_seq_cst
#define ACQ memory_order_acquire
#define RLX memory_order_relaxed

struct xring {
    _Alignas(64) _Atomic uint64_t head; /* bytes the writer has published */
    _Atomic bool eof;                   /* the writer publishes nothing after head */
    _Atomic bool writer_waits;          /* the writer has bytes queued and waits for space */
    _Alignas(64) _Atomic uint64_t tail; /* bytes the reader has taken */
    _Atomic bool reader_gone;           /* the reader closed: no more writes */
    _Alignas(64) uint8_t *buf;
};

struct xchunk {
    struct xchunk *next;
    size_t len, off;
    uint8_t data[];
};

struct xloop_end {
    mps_stream base;
    struct xloop *x;
    struct xloop_end *peer;
    struct xring *in, *out; /* in: the peer writes, we read; out: the other way */
    uv_async_t async;
    bool async_open;             /* under x->lock: wakeups may be sent to async */
    _Atomic uint64_t wakeups;    /* sent to us (statistics) */
    struct xchunk *head, **tail; /* written, not yet in out's ring */
    bool reading;
    bool shut;          /* shutdown or close: EOF once the queue is in the ring */
    bool eof_published; /* out->eof is set */
    bool eof_delivered; /* our reader got MPS_EOF */
    bool peer_gone;     /* out->reader_gone seen: the queue is dropped, writes failed */
    bool released;      /* ops->free ran: the owner is done with us */
    bool finishing;     /* async is closing; the reference goes with it */
    struct loop_call pump_call, close_call;
};

struct xloop {
    uv_mutex_t lock; /* the ends' async_open and uv_async_send */
    _Atomic int refs;
    size_t window;
    struct xring ring[2]; /* ring[i]: written by end[i], read by end[1 - i] */
    struct xloop_end end[2];
};

static const struct stream_ops xloop_ops;

/* ------------------------------------------------------------------------- shared */

static void
xloop_put(struct xloop *x)
{
    if (atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < 2; i++)
        free(x->ring[i].buf);
    uv_mutex_destroy(&x->lock);
    free(x);
}

/* Any thread: make e's loop look at the rings. Never to a handle that is closing. */
static void
xloop_wake(struct xloop_end *e)
{
    uv_mutex_lock(&e->x->lock);
    if (e->async_open) {
        atomic_fetch_add_explicit(&e->wakeups, 1, RLX);
        uv_async_send(&e->async);
    }
    uv_mutex_unlock(&e->x->lock);
}

/* The writer waits for this much space before it is woken: half-window steps, so a reader
 * that takes bytes in small reads does not wake the writer for each. */
static size_t
xloop_resume_space(const struct xloop *x)
{
    return x->window / 2;
}

/* ------------------------------------------------------------------------- writer */

static void
xloop_drop_queue(struct xloop_end *e)
{
    struct xchunk *c = e->head;
    while (c) {
        struct xchunk *n = c->next;
        free(c);
        c = n;
    }
    e->head = NULL;
    e->tail = &e->head;
}

static void xloop_maybe_finish(struct xloop_end *e);

/* The peer closed its end: what we queued for it is dropped, its write callbacks fail. */
static bool
xloop_check_peer_gone(struct xloop_end *e)
{
    if (e->peer_gone)
        return true;
    if (!atomic_load_explicit(&e->out->reader_gone, ACQ))
        return false;
    e->peer_gone = true;
    xloop_drop_queue(e);
    if (!e->released) /* closing too: the peer's close, not ours, is why they fail */
        stream_fail_writes(&e->base, -EPIPE);
    return true;
}

/* Copy len bytes into out's ring at position pos (the caller knows they fit). */
static void
xloop_ring_copy(struct xloop_end *e, uint64_t pos, const void *src, size_t len)
{
    size_t w = e->x->window, off = (size_t)(pos % w);
    size_t first = len < w - off ? len : w - off;
    memcpy(e->out->buf + off, src, first);
    if (len > first)
        memcpy(e->out->buf, (const uint8_t *)src + first, len - first);
}

/* Publish head (bytes up to it are in the ring); true when the reader had taken everything
 * before them, so it may be asleep and must be woken. */
static bool
xloop_publish(struct xloop_end *e, uint64_t from, uint64_t head)
{
    atomic_store_explicit(&e->out->head, head, SC);
    return atomic_load_explicit(&e->out->tail, SC) == from;
}

/* Move queued bytes into the ring while there is room; EOF after the last of them once
 * shut; report what moved as sent. Returns with writer_waits set when bytes remain. */
static void
xloop_flush(struct xloop_end *e)
{
    struct xring *r = e->out;
    size_t w = e->x->window;
    if (xloop_check_peer_gone(e)) {
        xloop_maybe_finish(e);
        return;
    }
    uint64_t head = atomic_load_explicit(&r->head, RLX);
    size_t moved = 0;
    bool kick = false;
    while (e->head) {
        uint64_t from = head;
        size_t room = w - (size_t)(head - atomic_load_explicit(&r->tail, ACQ));
        while (e->head && room > 0) {
            struct xchunk *c = e->head;
            size_t n = c->len - c->off < room ? c->len - c->off : room;
            xloop_ring_copy(e, head, c->data + c->off, n);
            c->off += n;
            head += n;
            room -= n;
            moved += n;
            if (c->off == c->len) {
                e->head = c->next;
                if (!e->head)
                    e->tail = &e->head;
                free(c);
            }
        }
        if (head != from && xloop_publish(e, from, head))
            kick = true;
        if (!e->head)
            break;
        /* Full: ask the reader to wake us, then look again in case it freed space before it
         * could see the request. */
        atomic_store_explicit(&r->writer_waits, true, SC);
        if (w - (size_t)(head - atomic_load_explicit(&r->tail, SC)) < xloop_resume_space(e->x))
            break;
        atomic_store_explicit(&r->writer_waits, false, RLX);
    }
    if (kick)
        xloop_wake(e->peer);
    if (!e->head && e->shut && !e->eof_published) {
        e->eof_published = true;
        atomic_store_explicit(&r->eof, true, SC);
        xloop_wake(e->peer);
    }
    if (moved && !e->base.closing)
        stream_sent(&e->base, moved); /* may write again (a drain callback): state is whole */
    xloop_maybe_finish(e);
}

static int
xloop_write(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    struct xloop_end *e = (struct xloop_end *)s;
    /* Not xloop_check_peer_gone: failing the queued writes here would count this write as
     * sent, which stream_write takes back on error. The peer's close woke our loop for it. */
    if (e->shut || e->peer_gone || atomic_load_explicit(&e->out->reader_gone, ACQ))
        return -EPIPE;
    struct xring *r = e->out;
    size_t w = e->x->window, total = 0, room = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    uint64_t head = atomic_load_explicit(&r->head, RLX), from = head;
    if (!e->head) /* nothing queued: what fits goes straight into the ring, the one copy */
        room = w - (size_t)(head - atomic_load_explicit(&r->tail, ACQ));
    size_t direct = total < room ? total : room;
    struct xchunk *c = NULL;
    if (direct < total) {
        /* Allocated before anything is copied: a failure leaves the stream as it was. */
        c = malloc(sizeof(*c) + (total - direct));
        if (!c)
            return -ENOMEM;
        c->next = NULL;
        c->len = total - direct;
        c->off = 0;
    }
    size_t done = 0;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = iov[i].base;
        size_t len = iov[i].len;
        if (done < direct) {
            size_t take = direct - done < len ? direct - done : len;
            xloop_ring_copy(e, head, p, take);
            head += take;
            p += take;
            len -= take;
            done += take;
        }
        if (len) {
            memcpy(c->data + (done - direct), p, len);
            done += len;
        }
    }
    if (c) {
        *e->tail = c;
        e->tail = &c->next;
    }
    if (direct && xloop_publish(e, from, head))
        xloop_wake(e->peer);
    if (direct)
        stream_sent(s, direct); /* after the queue is whole: a drain callback may write */
    if (c)
        xloop_flush(e); /* asks the reader for space, or takes what came free meanwhile */
    return 0;
}

static int
xloop_shutdown(mps_stream *s)
{
    struct xloop_end *e = (struct xloop_end *)s;
    e->shut = true;
    xloop_flush(e);
    return 0;
}

/* ------------------------------------------------------------------------- reader */

/* Deliver what the peer put in our ring while we read, then its EOF; hand the space back.
 * At most one window per call: a writer as fast as us must not keep the loop here. */
static void
xloop_pump(struct xloop_end *e)
{
    struct xring *r = e->in;
    size_t w = e->x->window, budget = w;
    uint64_t tail = atomic_load_explicit(&r->tail, RLX);
    while (e->reading && !e->base.closing) {
        uint64_t head = atomic_load_explicit(&r->head, SC);
        if (head == tail) {
            if (e->eof_delivered || !atomic_load_explicit(&r->eof, ACQ))
                break;
            if (atomic_load_explicit(&r->head, ACQ) != tail)
                continue; /* bytes published just before the EOF */
            e->eof_delivered = true;
            stream_deliver(&e->base, NULL, 0, MPS_EOF);
            break;
        }
        if (budget == 0) {
            loop_call_queue(e->base.loop, &e->pump_call);
            break;
        }
        size_t off = (size_t)(tail % w), n = (size_t)(head - tail);
        if (n > w - off)
            n = w - off; /* up to the end of the buffer: the rest is the next delivery */
        if (n > budget)
            n = budget;
        stream_deliver(&e->base, r->buf + off, n, 0);
        tail += n;
        budget -= n;
        atomic_store_explicit(&r->tail, tail, SC);
        if (atomic_load_explicit(&r->writer_waits, SC) &&
            w - (size_t)(atomic_load_explicit(&r->head, ACQ) - tail) >= xloop_resume_space(e->x) &&
            atomic_exchange_explicit(&r->writer_waits, false, SC))
            xloop_wake(e->peer);
    }
}

static void
xloop_pump_call(struct loop_call *call)
{
    xloop_pump(loop_container_of(call, struct xloop_end, pump_call));
}

static int
xloop_read_start(mps_stream *s)
{
    struct xloop_end *e = (struct xloop_end *)s;
    e->reading = true;
    loop_call_queue(s->loop, &e->pump_call); /* never inline: the caller is not ready */
    return 0;
}

static int
xloop_read_stop(mps_stream *s)
{
    ((struct xloop_end *)s)->reading = false;
    return 0;
}

/* Our loop was woken: bytes or EOF to read, space to write into, or the peer closed. */
static void
xloop_async(uv_async_t *h)
{
    struct xloop_end *e = h->data;
    xloop_pump(e);
    xloop_flush(e);
}

/* ------------------------------------------------------------------------- close */

static void
xloop_async_closed(uv_handle_t *h)
{
    struct xloop_end *e = h->data;
    xloop_put(e->x);
}

/* Let go of the loop once the owner is done and our bytes are in the ring (or unwanted). */
static void
xloop_maybe_finish(struct xloop_end *e)
{
    if (!e->released || e->finishing || (!e->eof_published && !e->peer_gone))
        return;
    e->finishing = true;
    xloop_drop_queue(e);
    loop_call_cancel(e->base.loop, &e->pump_call);
    uv_mutex_lock(&e->x->lock);
    e->async_open = false;
    uv_mutex_unlock(&e->x->lock);
    uv_close((uv_handle_t *)&e->async, xloop_async_closed);
}

static void
xloop_closed(struct loop_call *call)
{
    struct xloop_end *e = loop_container_of(call, struct xloop_end, close_call);
    stream_closed(&e->base, 0);
}

static void
xloop_close(mps_stream *s)
{
    struct xloop_end *e = (struct xloop_end *)s;
    e->reading = false;
    /* The peer stops writing to us and drops what it queued; its reader gets what we wrote,
     * then EOF. */
    atomic_store_explicit(&e->in->reader_gone, true, SC);
    xloop_wake(e->peer);
    e->shut = true;
    xloop_flush(e);
    loop_call_queue(s->loop, &e->close_call);
}

static void
xloop_free(mps_stream *s)
{
    struct xloop_end *e = (struct xloop_end *)s;
    e->released = true;
    xloop_maybe_finish(e);
}

static const struct stream_ops xloop_ops = {
    .kind = "xloop",
    .read_start = xloop_read_start,
    .read_stop = xloop_read_stop,
    .write = xloop_write,
    .shutdown = xloop_shutdown,
    .close = xloop_close,
    .free = xloop_free,
};

/* ------------------------------------------------------------------------- setup */

static int
xloop_end_init(struct xloop *x, int i, uv_loop_t *loop)
{
    struct xloop_end *e = &x->end[i];
    int rc = uv_async_init(loop, &e->async, xloop_async);
    if (rc < 0)
        return rc;
    stream_init(&e->base, &xloop_ops, loop);
    strcpy(e->base.peer, i == 0 ? "xloop:a" : "xloop:b");
    strcpy(e->base.peer_host, "xloop");
    e->tail = &e->head;
    loop_call_init(&e->pump_call, xloop_pump_call);
    loop_call_init(&e->close_call, xloop_closed);
    e->async.data = e;
    uv_mutex_lock(&x->lock);
    e->async_open = true;
    uv_mutex_unlock(&x->lock);
    return 0;
}

int
xloop_new(uv_loop_t *a, size_t window, struct xloop **x_r, mps_stream **a_r)
{
    if (window < XLOOP_WINDOW_MIN || window > XLOOP_WINDOW_MAX)
        return -EINVAL;
    struct xloop *x = aligned_alloc(64, (sizeof(*x) + 63) / 64 * 64);
    if (!x)
        return -ENOMEM;
    memset(x, 0, sizeof(*x));
    x->ring[0].buf = malloc(window);
    x->ring[1].buf = malloc(window);
    if (!x->ring[0].buf || !x->ring[1].buf || uv_mutex_init(&x->lock) != 0) {
        free(x->ring[0].buf);
        free(x->ring[1].buf);
        free(x);
        return -ENOMEM;
    }
    x->window = window;
    atomic_init(&x->refs, 2);
    for (int i = 0; i < 2; i++) {
        struct xloop_end *e = &x->end[i];
        e->x = x;
        e->peer = &x->end[1 - i];
        e->out = &x->ring[i];
        e->in = &x->ring[1 - i];
    }
    int rc = xloop_end_init(x, 0, a);
    if (rc < 0) {
        uv_mutex_destroy(&x->lock);
        free(x->ring[0].buf);
        free(x->ring[1].buf);
        free(x);
        return rc;
    }
    *x_r = x;
    *a_r = &x->end[0].base;
    return 0;
}

int
xloop_attach(struct xloop *x, uv_loop_t *b, mps_stream **b_r)
{
    int rc = xloop_end_init(x, 1, b);
    if (rc < 0) {
        xloop_discard(x);
        return rc;
    }
    *b_r = &x->end[1].base;
    return 0;
}

void
xloop_discard(struct xloop *x)
{
    /* As xloop_close and a finished flush of end B, without a stream or a handle. */
    atomic_store_explicit(&x->ring[0].reader_gone, true, SC);
    atomic_store_explicit(&x->ring[1].eof, true, SC);
    xloop_wake(&x->end[0]);
    xloop_put(x);
}

int
xloop_pair_new(uv_loop_t *a, uv_loop_t *b, size_t window, mps_stream **a_r, mps_stream **b_r)
{
    struct xloop *x;
    int rc = xloop_new(a, window, &x, a_r);
    if (rc < 0)
        return rc;
    rc = xloop_attach(x, b, b_r);
    if (rc < 0) {
        stream_close(*a_r, NULL, NULL); /* its loop frees the pair: nobody runs it yet */
        *a_r = NULL;
    }
    return rc;
}

mps_stream *
xloop_peer(mps_stream *s)
{
    return &((struct xloop_end *)s)->peer->base;
}

bool
xloop_idle(mps_stream *s)
{
    struct xloop_end *e = (struct xloop_end *)s;
    if (e->head || e->shut || e->eof_published || e->eof_delivered || e->peer_gone)
        return false;
    /* Our ring's head is ours; its tail and the other ring's head are the peer's. */
    return atomic_load_explicit(&e->out->tail, ACQ) == atomic_load_explicit(&e->out->head, RLX) &&
           atomic_load_explicit(&e->in->head, ACQ) == atomic_load_explicit(&e->in->tail, RLX) &&
           !atomic_load_explicit(&e->in->eof, ACQ) &&
           !atomic_load_explicit(&e->out->reader_gone, ACQ);
}

uint64_t
xloop_wakeups(const mps_stream *s)
{
    const struct xloop_end *e = (const struct xloop_end *)s;
    return atomic_load_explicit(&e->wakeups, RLX);
}
