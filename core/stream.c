/* stream.c - the generic stream base and the per-loop deferred calls (TCP: stream_tcp.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include "stream.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ deferred calls */

struct deferred {
    void (*fn)(void *arg, int status);
    void *arg;
    int status;
    struct deferred *next;
};

struct stream_loop {
    uv_idle_t idle; /* active only while calls are queued, so an idle loop sleeps */
    struct deferred *head, **tail;
};

static void
deferred_run(uv_idle_t *idle)
{
    struct stream_loop *sl = idle->data;
    /* Take the current batch: calls queued by these callbacks run on the next turn. */
    struct deferred *d = sl->head;
    sl->head = NULL;
    sl->tail = &sl->head;
    uv_idle_stop(idle);
    while (d) {
        struct deferred *next = d->next;
        d->fn(d->arg, d->status);
        free(d);
        d = next;
    }
}

int
stream_loop_init(uv_loop_t *loop)
{
    struct stream_loop *sl = calloc(1, sizeof(*sl));
    if (!sl)
        return -ENOMEM;
    uv_idle_init(loop, &sl->idle);
    sl->idle.data = sl;
    sl->tail = &sl->head;
    loop->data = sl;
    return 0;
}

static void
stream_loop_closed(uv_handle_t *h)
{
    free(h->data);
}

void
stream_loop_fini(uv_loop_t *loop)
{
    struct stream_loop *sl = loop->data;
    if (!sl)
        return;
    /* Whatever is still queued belongs to objects that are gone or going: run it now. */
    while (sl->head)
        deferred_run(&sl->idle);
    loop->data = NULL;
    uv_close((uv_handle_t *)&sl->idle, stream_loop_closed);
    tcp_stream_spares_free();
}

void
stream_defer(uv_loop_t *loop, void (*fn)(void *arg, int status), void *arg, int status)
{
    struct stream_loop *sl = loop->data;
    struct deferred *d = malloc(sizeof(*d));
    if (!d) {
        /* Out of memory: running it late is better than never (callers tolerate it). */
        fn(arg, status);
        return;
    }
    d->fn = fn;
    d->arg = arg;
    d->status = status;
    d->next = NULL;
    *sl->tail = d;
    sl->tail = &d->next;
    uv_idle_start(&sl->idle, deferred_run);
}

/* ----------------------------------------------------------------------- base */

struct stream_write_mark {
    uint64_t until; /* the callback runs once tx_out reaches this */
    mps_done_cb cb;
    void *arg;
    struct stream_write_mark *next;
};

void
stream_peer_split(const mps_stream *s, char *addr, size_t addr_len, uint16_t *port)
{
    const char *peer = s->peer, *start = peer, *end, *colon;
    snprintf(addr, addr_len, "0.0.0.0");
    *port = 0;
    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
        colon = end && end[1] == ':' ? end + 1 : NULL;
    } else {
        end = colon = strrchr(peer, ':');
    }
    if (!end || end == start || (size_t)(end - start) >= addr_len)
        return;
    memcpy(addr, start, (size_t)(end - start));
    addr[end - start] = '\0';
    if (colon)
        *port = (uint16_t)strtoul(colon + 1, NULL, 10);
}

void
stream_init(mps_stream *s, const struct stream_ops *ops, uv_loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->loop = loop;
    s->marks_tail = &s->marks;
}

static void
stream_unread_deliver(void *arg, int status)
{
    (void)status;
    mps_stream *s = arg;
    s->unread_queued = false;
    if (s->closing) {
        if (s->free_deferred)
            s->ops->free(s);
        return;
    }
    if (!s->reading)
        return; /* the next read_start queues it again */
    uint8_t *data = s->unread;
    size_t len = s->unread_len;
    s->unread = NULL;
    s->unread_len = 0;
    stream_deliver(s, data, len, 0);
    free(data);
    /* A callback that closes the stream only starts the close: s is freed later. */
    if (!s->closing && s->reading)
        s->ops->read_start(s);
}

int
stream_read_start(mps_stream *s, mps_read_cb cb, void *arg)
{
    if (s->closing)
        return -EPIPE;
    s->read_cb = cb;
    s->read_arg = arg;
    s->reading = true;
    if (s->unread) {
        /* Never inline: the caller may not be ready for data inside its read_start call. */
        if (!s->unread_queued) {
            s->unread_queued = true;
            stream_defer(s->loop, stream_unread_deliver, s, 0);
        }
        return 0;
    }
    return s->ops->read_start(s);
}

int
stream_read_stop(mps_stream *s)
{
    if (s->closing)
        return 0;
    s->reading = false;
    return s->ops->read_stop(s);
}

int
stream_unread(mps_stream *s, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t *p = malloc(s->unread_len + len);
    if (!p)
        return -ENOMEM;
    memcpy(p, data, len);
    if (s->unread)
        memcpy(p + len, s->unread, s->unread_len);
    free(s->unread);
    s->unread = p;
    s->unread_len += len;
    return 0;
}

int
stream_set_identity(mps_stream *s, const char *identity)
{
    char *copy = identity ? strdup(identity) : NULL;
    if (identity && !copy)
        return -ENOMEM;
    free(s->identity);
    s->identity = copy;
    return 0;
}

int
stream_write(mps_stream *s, const struct mps_iov *iov, unsigned n, mps_done_cb cb, void *arg)
{
    if (s->closing)
        return -EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    struct stream_write_mark *m = NULL;
    if (cb) {
        m = malloc(sizeof(*m));
        if (!m)
            return -ENOMEM;
        m->until = s->tx_in + total;
        m->cb = cb;
        m->arg = arg;
        m->next = NULL;
    }
    uint64_t before = s->tx_in;
    s->tx_in += total;
    /* Writing nothing only asks to be told when everything written so far has left. */
    int rc = total ? s->ops->write(s, iov, n) : 0;
    if (rc < 0) {
        s->tx_in = before;
        free(m);
        return rc;
    }
    if (s->drain_cb && stream_write_queue_size(s) > s->drain_below)
        s->drain_armed = true;
    if (m) {
        *s->marks_tail = m;
        s->marks_tail = &m->next;
        /* Sent synchronously: the callback still must not run inline. */
        stream_sent(s, 0);
    }
    return 0;
}

size_t
stream_write_queue_size(const mps_stream *s)
{
    return (size_t)(s->tx_in - s->tx_out);
}

int
stream_shutdown(mps_stream *s)
{
    if (s->closing)
        return -EPIPE;
    return s->ops->shutdown(s);
}

void
stream_close(mps_stream *s, mps_done_cb cb, void *arg)
{
    if (s->closing)
        return; /* a second close is a caller bug; ignoring it keeps the first callback */
    s->closing = true;
    s->read_cb = NULL;
    s->drain_cb = NULL;
    s->close_cb = cb;
    s->close_arg = arg;
    s->ops->close(s);
}

void
stream_closed(mps_stream *s, int status)
{
    stream_fail_writes(s, status ? status : -ECANCELED);
    if (s->close_cb)
        s->close_cb(s->close_arg, status);
    free(s->unread);
    s->unread = NULL;
    free(s->identity);
    s->identity = NULL;
    if (s->unread_queued)
        s->free_deferred = true; /* stream_unread_deliver still holds s */
    else
        s->ops->free(s);
}

void
stream_deliver(mps_stream *s, const void *data, size_t len, int status)
{
    if (!s->read_cb)
        return;
    struct mps_iov iov = {data, len};
    s->read_cb(s->read_arg, s, status == 0 ? &iov : NULL, status);
}

static void
run_write_mark(void *arg, int status)
{
    struct stream_write_mark *m = arg;
    m->cb(m->arg, status);
    free(m);
}

void
stream_sent(mps_stream *s, size_t n)
{
    s->tx_out += n;
    while (s->marks && s->marks->until <= s->tx_out) {
        struct stream_write_mark *m = s->marks;
        s->marks = m->next;
        if (!s->marks)
            s->marks_tail = &s->marks;
        stream_defer(s->loop, run_write_mark, m, 0);
    }
    if (s->drain_armed && stream_write_queue_size(s) <= s->drain_below) {
        s->drain_armed = false;
        if (s->drain_cb)
            s->drain_cb(s->drain_arg, s);
    }
}

void
stream_fail_writes(mps_stream *s, int status)
{
    while (s->marks) {
        struct stream_write_mark *m = s->marks;
        s->marks = m->next;
        stream_defer(s->loop, run_write_mark, m, status);
    }
    s->marks_tail = &s->marks;
    s->tx_out = s->tx_in;
}

void
stream_set_drain(mps_stream *s, size_t below, stream_drain_cb cb, void *arg)
{
    s->drain_below = below;
    s->drain_cb = cb;
    s->drain_arg = arg;
    s->drain_armed = cb && stream_write_queue_size(s) > below;
}

void
sockaddr_text(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[64] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
    } else {
        snprintf(out, len, "unknown");
    }
}
