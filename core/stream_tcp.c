/* stream_tcp.c - the TCP stream (try_write first, writes gathered per read, lingering
 * close) and the TCP listener.
 * SPDX-License-Identifier: Apache-2.0 */
#include "stream_tcp.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ TCP */

/* One read buffer per loop thread: a read callback consumes or copies its data before
 * returning, so idle connections hold no receive buffer at all. Allocated by the first read
 * of a thread (threads that never run a loop, such as auth workers, hold none); the discard
 * buffer of lingering closes shares the allocation. Every loop runs in its own thread
 * (Workers, docs/workers.md), so this state, the batch and the spares are thread-local. */
#define TCP_READ_BUF 65536
#define TCP_DISCARD_BUF 4096
static _Thread_local char *tcp_read_buf; /* TCP_READ_BUF + TCP_DISCARD_BUF bytes */
static _Thread_local bool tcp_read_buf_busy;

struct tcp_stream {
    mps_stream base;
    uv_tcp_t handle;
    bool shut;      /* shutdown requested */
    bool eof;       /* EOF or error delivered: never deliver again */
    bool shut_done; /* our FIN is out (or the shutdown failed) */
    bool peer_done; /* the peer's FIN or an error arrived */
    bool lingering; /* closing: discarding input until the peer's FIN */
    bool fin_wait;  /* lingering, our FIN is out: the shorter timer runs */
    uv_timer_t *linger; /* bounds a lingering close */
    bool batched;       /* on tcp_batch */
    int send_error;     /* a gathered send failed: later writes report it */
    struct tcp_stream *batch_next;
    char *gather; /* written while a read was handled, not sent yet (see tcp_batching) */
    size_t gather_len, gather_cap;
};

/* While one read is handled, what is written to any TCP stream is gathered, and each stream's
 * share goes out in one send when the handler returns. One tunnel read carries many APF
 * messages and one console read becomes several CHANNEL_DATA: sent one by one, each would
 * cost a syscall, a packet and a wakeup of the peer (tests/bench/README.md has the numbers). */
static _Thread_local bool tcp_batching;
static _Thread_local struct tcp_stream *tcp_batch;
/* Gather buffers are recycled: a batch usually touches a console and a tunnel, and a fresh
 * buffer per stream and read would cost a 64-byte round trip more than the send it saves. */
#define TCP_SPARES 4
#define TCP_SPARE_MAX (256 * 1024)
static _Thread_local struct {
    char *p;
    size_t cap;
} tcp_spare[TCP_SPARES];
static _Thread_local unsigned tcp_nspare;

/* A closing connection first sends what is queued and its FIN, then reads and discards until
 * the peer's FIN: closing a socket with unread input makes the kernel send RST, and the peer
 * may then lose our last bytes (an error response, a DISCONNECT) still in flight. The flush
 * may take TCP_LINGER_MS when the peer reads slowly; the wait for its FIN after that only
 * TCP_LINGER_FIN_MS. */
#define TCP_LINGER_MS 10000
#define TCP_LINGER_FIN_MS 2000

/* This thread's read buffer (the discard buffer follows it), or NULL on ENOMEM. */
static char *
tcp_thread_buf(void)
{
    if (!tcp_read_buf)
        tcp_read_buf = malloc(TCP_READ_BUF + TCP_DISCARD_BUF);
    return tcp_read_buf;
}

struct tcp_write {
    uv_write_t req;
    struct tcp_stream *ts;
    size_t len;
    char data[];
};

static void
tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    char *rb = tcp_thread_buf();
    if (tcp_read_buf_busy || !rb) {
        /* A reentrant read (a callback ran the loop: cannot happen with libuv, be safe), or
         * no memory: libuv reports UV_ENOBUFS to the read callback. */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    tcp_read_buf_busy = true;
    *buf = uv_buf_init(rb, TCP_READ_BUF);
}

static void tcp_batch_flush(void);

static void
tcp_on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_stream *ts = h->data;
    if (buf->base == tcp_read_buf)
        tcp_read_buf_busy = false;
    if (nread == 0 || ts->eof)
        return;
    if (nread < 0) {
        ts->eof = true;
        uv_read_stop(h);
        stream_deliver(&ts->base, NULL, 0, nread == UV_EOF ? MPS_EOF : (int)nread);
        return;
    }
    tcp_batching = true;
    stream_deliver(&ts->base, buf->base, (size_t)nread, 0);
    tcp_batching = false;
    tcp_batch_flush();
}

static int
tcp_read_start(mps_stream *s)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    if (ts->eof)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&ts->handle, tcp_alloc, tcp_on_read);
    return rc == UV_EALREADY ? 0 : rc;
}

static int
tcp_read_stop(mps_stream *s)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    return uv_read_stop((uv_stream_t *)&ts->handle);
}

static void
tcp_write_done(uv_write_t *req, int status)
{
    struct tcp_write *w = (struct tcp_write *)req;
    struct tcp_stream *ts = w->ts;
    size_t len = w->len;
    free(w);
    if (status == UV_ECANCELED)
        return; /* closing: stream_closed accounts for it */
    stream_sent(&ts->base, len);
}

static int
tcp_send(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    uv_buf_t bufs[16];
    if (n > 16)
        return -EINVAL;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = uv_buf_init((char *)iov[i].base, (unsigned)iov[i].len);
        total += iov[i].len;
    }
    size_t done = 0;
    /* Most writes fit the socket buffer: send them without a copy or an allocation. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&ts->handle) == 0) {
        int rc = uv_try_write((uv_stream_t *)&ts->handle, bufs, n);
        if (rc > 0)
            done = (size_t)rc;
        else if (rc != UV_EAGAIN && rc != UV_ENOSYS)
            return rc;
    }
    if (done == total) {
        stream_sent(s, total);
        return 0;
    }
    struct tcp_write *w = malloc(sizeof(*w) + total - done);
    if (!w)
        return -ENOMEM;
    w->ts = ts;
    w->len = total - done;
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < n; i++) {
        size_t l = iov[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(w->data + off, (const char *)iov[i].base + skip, l - skip);
        off += l - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&ts->handle, &b, 1, tcp_write_done);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (done)
        stream_sent(s, done);
    return 0;
}

void
tcp_stream_thread_free(void)
{
    while (tcp_nspare > 0)
        free(tcp_spare[--tcp_nspare].p);
    free(tcp_read_buf);
    tcp_read_buf = NULL;
}

/* Back to the spares (or freed): 10,000 idle tunnels should hold no buffer. */
static void
tcp_gather_release(struct tcp_stream *ts)
{
    if (ts->gather && ts->gather_cap <= TCP_SPARE_MAX && tcp_nspare < TCP_SPARES) {
        tcp_spare[tcp_nspare].p = ts->gather;
        tcp_spare[tcp_nspare++].cap = ts->gather_cap;
    } else {
        free(ts->gather);
    }
    ts->gather = NULL;
    ts->gather_len = ts->gather_cap = 0;
}

static void
tcp_unbatch(struct tcp_stream *ts)
{
    if (!ts->batched)
        return;
    for (struct tcp_stream **p = &tcp_batch; *p; p = &(*p)->batch_next) {
        if (*p == ts) {
            *p = ts->batch_next;
            break;
        }
    }
    ts->batched = false;
}

/* Sends what was gathered. The writers were told it was accepted: a failure (the peer reset)
 * fails their callbacks, and the next write returns it, as an immediate send would have. */
static void
tcp_gather_send(struct tcp_stream *ts)
{
    tcp_unbatch(ts);
    if (!ts->gather_len)
        return;
    struct mps_iov iov = {ts->gather, ts->gather_len};
    int rc = tcp_send(&ts->base, &iov, 1);
    if (rc < 0) {
        ts->send_error = rc;
        stream_fail_writes(&ts->base, rc);
    }
    tcp_gather_release(ts);
}

static void
tcp_batch_flush(void)
{
    while (tcp_batch)
        tcp_gather_send(tcp_batch);
}

static int
tcp_write(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    if (ts->shut)
        return -EPIPE;
    if (ts->send_error)
        return ts->send_error;
    if (!tcp_batching)
        return tcp_send(s, iov, n);
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    if (!ts->gather && tcp_nspare > 0) {
        tcp_nspare--;
        ts->gather = tcp_spare[tcp_nspare].p;
        ts->gather_cap = tcp_spare[tcp_nspare].cap;
    }
    if (ts->gather_len + total > ts->gather_cap) {
        size_t cap = ts->gather_cap ? ts->gather_cap : 16384;
        while (cap < ts->gather_len + total)
            cap *= 2;
        char *g = realloc(ts->gather, cap);
        if (!g)
            return -ENOMEM;
        ts->gather = g;
        ts->gather_cap = cap;
    }
    for (unsigned i = 0; i < n; i++) {
        memcpy(ts->gather + ts->gather_len, iov[i].base, iov[i].len);
        ts->gather_len += iov[i].len;
    }
    if (!ts->batched) {
        ts->batched = true;
        ts->batch_next = tcp_batch;
        tcp_batch = ts;
    }
    return 0;
}

static void tcp_close_now(struct tcp_stream *ts);
static void tcp_linger_expired(uv_timer_t *timer);

/* A lingering close goes on: closed once both FINs are through, else the timers decide. */
static void
tcp_linger_step(struct tcp_stream *ts)
{
    if (!ts->lingering)
        return;
    if (ts->shut_done && ts->peer_done) {
        tcp_close_now(ts);
    } else if (ts->shut_done && !ts->fin_wait) {
        ts->fin_wait = true;
        uv_timer_start(ts->linger, tcp_linger_expired, TCP_LINGER_FIN_MS, 0);
    }
}

static void
tcp_shutdown_done(uv_shutdown_t *req, int status)
{
    struct tcp_stream *ts = req->data;
    free(req);
    if (status == UV_ECANCELED)
        return; /* the handle is closing already */
    ts->shut_done = true;
    if (status < 0)
        ts->peer_done = true; /* reset or gone: nothing more will come */
    tcp_linger_step(ts);
}

static int
tcp_shutdown(mps_stream *s)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    if (ts->shut)
        return 0;
    tcp_gather_send(ts); /* the FIN follows the data */
    ts->shut = true;
    /* Allocated now: an idle connection should not carry a request it uses once, at its end. */
    uv_shutdown_t *req = malloc(sizeof(*req));
    int rc = req ? 0 : UV_ENOMEM;
    if (req) {
        req->data = ts;
        rc = uv_shutdown(req, (uv_stream_t *)&ts->handle, tcp_shutdown_done);
        if (rc < 0)
            free(req);
    }
    if (rc < 0)
        ts->shut_done = true;
    return rc == UV_ENOTCONN ? 0 : rc;
}

static void
tcp_handle_closed(uv_handle_t *h)
{
    struct tcp_stream *ts = h->data;
    if (ts->base.conn)
        ts->base.conn->ops->closed(ts->base.conn); /* the descriptor is gone */
    stream_closed(&ts->base, 0);
}

static void
tcp_linger_closed(uv_handle_t *h)
{
    free(h);
}

static void
tcp_close_now(struct tcp_stream *ts)
{
    if (uv_is_closing((uv_handle_t *)&ts->handle))
        return;
    tcp_unbatch(ts);
    ts->lingering = false;
    if (ts->linger) {
        uv_close((uv_handle_t *)ts->linger, tcp_linger_closed);
        ts->linger = NULL;
    }
    ts->base.drain_cb = NULL;
    uv_read_stop((uv_stream_t *)&ts->handle);
    uv_close((uv_handle_t *)&ts->handle, tcp_handle_closed);
}

static void
tcp_linger_expired(uv_timer_t *timer)
{
    struct tcp_stream *ts = timer->data;
    if (!ts->shut_done)
        log_debug("%s: peer did not take %zu queued bytes within %d ms: closing anyway",
                  ts->base.peer, stream_write_queue_size(&ts->base), TCP_LINGER_MS);
    tcp_close_now(ts);
}

static void
tcp_discard_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    char *rb = tcp_thread_buf();
    *buf = rb ? uv_buf_init(rb + TCP_READ_BUF, TCP_DISCARD_BUF) : uv_buf_init(NULL, 0);
}

static void
tcp_discard_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_stream *ts = h->data;
    (void)buf;
    if (nread >= 0)
        return; /* the peer is still sending: it gets our FIN and stops, or the timer ends it */
    ts->peer_done = true;
    uv_read_stop(h);
    tcp_linger_step(ts);
}

static void
tcp_close(mps_stream *s)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    tcp_gather_send(ts); /* what was written before the close goes out first */
    ts->base.drain_cb = NULL;
    uv_read_stop((uv_stream_t *)&ts->handle);
    ts->peer_done = ts->eof; /* its FIN or an error was delivered already */
    ts->eof = true;          /* nothing is delivered any more */
    if (ts->peer_done && stream_write_queue_size(s) == 0) {
        tcp_close_now(ts);
        return;
    }
    ts->linger = malloc(sizeof(*ts->linger));
    if (!ts->linger) {
        tcp_close_now(ts);
        return;
    }
    uv_timer_init(s->loop, ts->linger);
    ts->linger->data = ts;
    uv_timer_start(ts->linger, tcp_linger_expired, TCP_LINGER_MS, 0);
    ts->lingering = true;
    if (!ts->peer_done &&
        uv_read_start((uv_stream_t *)&ts->handle, tcp_discard_alloc, tcp_discard_read) < 0)
        ts->peer_done = true;
    if (!ts->shut)
        tcp_shutdown(s); /* the FIN follows the queued bytes; its callback steps on */
    tcp_linger_step(ts);
}

static void
tcp_free(mps_stream *s)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    tcp_unbatch(ts);
    tcp_gather_release(ts);
    free(s);
}

static const struct stream_ops tcp_ops = {
    .kind = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .free = tcp_free,
};

/* A stream around a fresh, unconnected handle. */
static struct tcp_stream *
tcp_stream_new(uv_loop_t *loop)
{
    struct tcp_stream *ts = malloc(sizeof(*ts));
    if (!ts)
        return NULL;
    stream_init(&ts->base, &tcp_ops, loop);
    ts->shut = ts->eof = ts->shut_done = ts->peer_done = ts->lingering = ts->fin_wait = false;
    ts->linger = NULL;
    ts->batched = false;
    ts->send_error = 0;
    ts->batch_next = NULL;
    ts->gather = NULL;
    ts->gather_len = ts->gather_cap = 0;
    uv_tcp_init(loop, &ts->handle);
    ts->handle.data = ts;
    return ts;
}

/* ----------------------------------------------------------------------- connect */

struct tcp_connect {
    uv_connect_t req;
    struct tcp_stream *ts;
    tcp_connect_cb cb; /* NULL once cancelled */
    void *arg;
};

static void
tcp_connect_abandon(struct tcp_stream *ts)
{
    ts->base.closing = true;
    uv_close((uv_handle_t *)&ts->handle, tcp_handle_closed); /* -> stream_closed -> tcp_free */
}

static void
tcp_on_connect(uv_connect_t *req, int status)
{
    struct tcp_connect *c = req->data;
    struct tcp_stream *ts = c->ts;
    tcp_connect_cb cb = c->cb;
    void *arg = c->arg;
    free(c);
    if (!cb)
        return; /* cancelled: the handle is closing already */
    if (status < 0) {
        tcp_connect_abandon(ts);
        cb(arg, NULL, status);
        return;
    }
    uv_tcp_nodelay(&ts->handle, 1);
    cb(arg, &ts->base, 0);
}

int
tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, struct stream_conn *conn,
            tcp_connect_cb cb, void *arg, struct tcp_connect **c_r)
{
    struct tcp_connect *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ts = tcp_stream_new(loop);
    if (!c->ts) {
        free(c);
        return -ENOMEM;
    }
    stream_set_peer(&c->ts->base, sa);
    c->cb = cb;
    c->arg = arg;
    c->req.data = c;
    int rc = uv_tcp_connect(&c->req, &c->ts->handle, sa, tcp_on_connect);
    if (rc < 0) {
        tcp_connect_abandon(c->ts);
        free(c);
        return rc;
    }
    c->ts->base.conn = conn;
    *c_r = c;
    return 0;
}

void
tcp_connect_cancel(struct tcp_connect *c)
{
    /* Closing the handle makes libuv call tcp_on_connect with UV_ECANCELED: c goes there. */
    c->cb = NULL;
    tcp_connect_abandon(c->ts);
}

/* ------------------------------------------------------------------------ accepted */

int
tcp_stream_detach(mps_stream *s, struct stream_conn **conn_r)
{
    struct tcp_stream *ts = (struct tcp_stream *)s;
    if (s->ops != &tcp_ops || s->closing || s->local || ts->shut || ts->eof || s->unread_len ||
        s->marks)
        return -EBUSY;
    tcp_gather_send(ts);
    if (ts->send_error || stream_write_queue_size(s) > 0)
        return -EBUSY;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&ts->handle, &fd) < 0)
        return -EBADF;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return -errno;
    *conn_r = s->conn; /* the connection lives on in dup_fd: so does its accounting */
    s->conn = NULL;
    /* As stream_close, but the handle goes at once: no FIN, no lingering (the socket stays
     * open through dup_fd), and libuv takes the descriptor out of this loop's epoll first. */
    s->closing = true;
    s->read_cb = NULL;
    s->drain_cb = NULL;
    s->close_cb = NULL;
    stream_set_owner(s, NULL);
    ts->eof = true;
    tcp_close_now(ts);
    return dup_fd;
}

mps_stream *
tcp_stream_accepted(uv_loop_t *loop, int fd, const struct sockaddr *sa, struct stream_conn *conn)
{
    struct tcp_stream *ts = tcp_stream_new(loop);
    if (!ts || uv_tcp_open(&ts->handle, fd) < 0) {
        if (ts) {
            ts->base.closing = true;
            uv_close((uv_handle_t *)&ts->handle, tcp_handle_closed);
        }
        close(fd);
        return NULL; /* conn is the caller's still: it counts no stream */
    }
    uv_tcp_nodelay(&ts->handle, 1);
    stream_set_peer(&ts->base, sa);
    ts->base.conn = conn;
    return &ts->base;
}
