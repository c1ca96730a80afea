/* proxy_accept.c - listeners behind an L4 load balancer: read the PROXY header of every
 * accepted connection, make its peer the address the header names, then hand it on.
 * SPDX-License-Identifier: Apache-2.0 */
#include "proxy_accept.h"
#include "log.h"
#include "proxy_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A balancer sends the header at once; a peer that does not is not a balancer. */
#define PROXY_HEADER_TIMEOUT_MS 10000

struct proxy_wait {
    struct proxy_gate *gate;
    mps_stream *stream;
    uv_timer_t timer;
    struct proxy_wait *next, *prev;
    size_t len;
    uint8_t buf[PROXY_HEADER_MAX];
};

static void
wait_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Detach w from its gate and release it; the stream goes to cb or is closed. */
static void
wait_end(struct proxy_wait *w, bool pass)
{
    struct proxy_gate *g = w->gate;
    if (w->prev)
        w->prev->next = w->next;
    else
        g->waiting = w->next;
    if (w->next)
        w->next->prev = w->prev;
    mps_stream *s = w->stream;
    uv_close((uv_handle_t *)&w->timer, wait_timer_closed);
    if (pass) {
        stream_read_stop(s);
        g->cb(g->arg, s);
    } else {
        stream_close(s, NULL, NULL);
    }
}

static void
wait_timeout(uv_timer_t *t)
{
    struct proxy_wait *w = t->data;
    struct netaddr_key key;
    stream_peer_key(w->stream, &key);
    log_peer(MPS_LOG_WARNING, &key, "proxy-timeout", "%s: no PROXY header within %d s: closed",
             w->stream->peer, PROXY_HEADER_TIMEOUT_MS / 1000);
    wait_end(w, false);
}

static void
wait_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct proxy_wait *w = arg;
    if (status < 0) {
        log_debug("%s: closed before its PROXY header", s->peer);
        wait_end(w, false);
        return;
    }
    size_t take = data->len;
    if (take > sizeof(w->buf) - w->len)
        take = sizeof(w->buf) - w->len;
    memcpy(w->buf + w->len, data->base, take);
    w->len += take;
    struct proxy_info info;
    size_t used = 0;
    const char *why = "malformed";
    /* The buffer holds PROXY_HEADER_MAX bytes: once full, the parser's answer is final. */
    enum proxy_status st = proxy_proto_parse(w->buf, w->len, &info, &used, &why);
    if (st == PROXY_NEED_MORE)
        return;
    if (st == PROXY_BAD) {
        struct netaddr_key key;
        stream_peer_key(s, &key);
        log_peer(MPS_LOG_WARNING, &key, "proxy-bad", "%s: bad PROXY header (%s): closed",
                 s->peer, why);
        wait_end(w, false);
        return;
    }
    /* unread prepends: the rest of this read first, then what the buffer holds past the
     * header, so the bytes come back in their order. */
    if (stream_unread(s, (const uint8_t *)data->base + take, data->len - take) < 0 ||
        stream_unread(s, w->buf + used, w->len - used) < 0) {
        log_error("%s: out of memory after the PROXY header", s->peer);
        wait_end(w, false);
        return;
    }
    if (!info.local) {
        char balancer[sizeof(s->peer)];
        memcpy(balancer, s->peer, sizeof(balancer));
        stream_set_peer(s, (const struct sockaddr *)&info.src);
        log_debug("%s: via load balancer %s", s->peer, balancer);
    }
    wait_end(w, true);
}

void
proxy_gate_init(struct proxy_gate *g, uv_loop_t *loop, mps_accept_cb cb, void *arg)
{
    memset(g, 0, sizeof(*g));
    g->loop = loop;
    g->cb = cb;
    g->arg = arg;
}

void
proxy_gate_accept(void *arg, mps_stream *s)
{
    struct proxy_gate *g = arg;
    struct proxy_wait *w = malloc(sizeof(*w));
    if (!w) {
        stream_close(s, NULL, NULL);
        return;
    }
    w->gate = g;
    w->stream = s;
    w->len = 0;
    uv_timer_init(g->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, wait_timeout, PROXY_HEADER_TIMEOUT_MS, 0);
    w->prev = NULL;
    w->next = g->waiting;
    if (g->waiting)
        g->waiting->prev = w;
    g->waiting = w;
    if (stream_read_start(s, wait_read, w) < 0)
        wait_end(w, false);
}

void
proxy_gate_close(struct proxy_gate *g)
{
    while (g->waiting)
        wait_end(g->waiting, false);
}
