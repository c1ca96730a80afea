/* stream.c - the generic stream base: peer, write accounting, drain marks, close, owners.
 * SPDX-License-Identifier: Apache-2.0 */
#include "stream.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------- base */

struct stream_write_mark {
    uint64_t until; /* the callback runs once tx_out reaches this */
    mps_done_cb cb;
    void *arg;
    int status;
    struct loop_call call; /* runs cb from the loop */
    struct stream_write_mark *next;
};

static void stream_unread_deliver(struct loop_call *call);

void
stream_init(mps_stream *s, const struct stream_ops *ops, uv_loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->loop = loop;
    s->marks_tail = &s->marks;
    loop_call_init(&s->unread_call, stream_unread_deliver);
}

/* ------------------------------------------------------------------------- peer */

void
stream_set_peer(mps_stream *s, const struct sockaddr *sa)
{
    memset(&s->peer_sa, 0, sizeof(s->peer_sa));
    memcpy(&s->peer_sa, sa, netaddr_len(sa));
    netaddr_format(sa, s->peer, sizeof(s->peer));
    netaddr_host(sa, s->peer_host, sizeof(s->peer_host));
    s->peer_port = netaddr_port(sa);
}

void
stream_set_peer_name(mps_stream *s, const char *host, uint16_t port)
{
    memset(&s->peer_sa, 0, sizeof(s->peer_sa));
    snprintf(s->peer_host, sizeof(s->peer_host), "%s", host);
    s->peer_port = port;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(s->peer, sizeof(s->peer), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static int
dup_opt(char **dst, const char *src)
{
    char *copy = src ? strdup(src) : NULL;
    if (src && !copy)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

void
stream_peer_key(const mps_stream *s, struct netaddr_key *k)
{
    netaddr_key(&s->peer_sa.sa, k);
}

int
stream_inherit_peer(mps_stream *s, const mps_stream *lower)
{
    s->local = lower->local;
    if (dup_opt(&s->identity, lower->identity) < 0 || dup_opt(&s->scope, lower->scope) < 0)
        return -ENOMEM;
    s->peer_sa = lower->peer_sa;
    s->peer_port = lower->peer_port;
    memcpy(s->peer, lower->peer, sizeof(s->peer));
    memcpy(s->peer_host, lower->peer_host, sizeof(s->peer_host));
    s->conn = lower->conn;
    if (s->conn)
        s->conn->refs++;
    return 0;
}

void
stream_established(mps_stream *s)
{
    if (s->conn)
        s->conn->ops->established(s->conn);
}

void
stream_conn_discard(struct stream_conn *c)
{
    c->ops->closed(c);
    c->ops->free(c);
}

static void
stream_conn_put(mps_stream *s)
{
    struct stream_conn *c = s->conn;
    s->conn = NULL;
    if (c && --c->refs == 0)
        c->ops->free(c);
}

/* ------------------------------------------------------------------------ owners */

void
stream_set_owner(mps_stream *s, struct stream_owner *o)
{
    if (s->owner == o)
        return;
    if (s->owner) {
        if (s->own_prev)
            s->own_prev->own_next = s->own_next;
        else
            s->owner->head = s->own_next;
        if (s->own_next)
            s->own_next->own_prev = s->own_prev;
        s->owner->n--;
    }
    s->owner = o;
    s->own_prev = NULL;
    s->own_next = NULL;
    if (o) {
        s->own_next = o->head;
        if (o->head)
            o->head->own_prev = s;
        o->head = s;
        o->n++;
    }
}

void
stream_forget_callbacks(mps_stream *s)
{
    s->read_cb = NULL;
    s->drain_cb = NULL;
    while (s->marks) {
        struct stream_write_mark *m = s->marks;
        s->marks = m->next;
        free(m);
    }
    s->marks_tail = &s->marks;
}

/* ------------------------------------------------------------------------- base */

static void
stream_unread_deliver(struct loop_call *call)
{
    mps_stream *s = loop_container_of(call, mps_stream, unread_call);
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
            loop_call_queue(s->loop, &s->unread_call);
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
stream_set_tls(mps_stream *s, const char *version, const char *cipher)
{
    version = version ? version : "";
    cipher = cipher ? cipher : "";
    size_t vlen = strlen(version), clen = strlen(cipher);
    char *both = malloc(vlen + clen + 2);
    if (!both)
        return -ENOMEM;
    memcpy(both, version, vlen + 1);
    memcpy(both + vlen + 1, cipher, clen + 1);
    free(s->tls);
    s->tls = both;
    return 0;
}

const char *
stream_tls_version(const mps_stream *s)
{
    return s->tls;
}

const char *
stream_tls_cipher(const mps_stream *s)
{
    return s->tls ? s->tls + strlen(s->tls) + 1 : NULL;
}

int
stream_set_identity(mps_stream *s, const char *identity)
{
    return dup_opt(&s->identity, identity);
}

int
stream_set_scope(mps_stream *s, const char *scope)
{
    return dup_opt(&s->scope, scope);
}

static void run_write_mark(struct loop_call *call);

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
        m->status = 0;
        m->next = NULL;
        loop_call_init(&m->call, run_write_mark);
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
    stream_set_owner(s, NULL); /* a stream being closed is no holder's leak */
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
    free(s->tls);
    s->tls = NULL;
    free(s->scope);
    s->scope = NULL;
    stream_conn_put(s);
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
run_write_mark(struct loop_call *call)
{
    struct stream_write_mark *m = loop_container_of(call, struct stream_write_mark, call);
    m->cb(m->arg, m->status);
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
        loop_call_queue(s->loop, &m->call);
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
        m->status = status;
        loop_call_queue(s->loop, &m->call);
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
