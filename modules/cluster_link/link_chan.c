/* link_chan.c - the channels a link carries: console channels (this node's console reaches a
 * device on the other node; a stream of ours handed to the console module) and device
 * channels (the other node's console reaches a device here through a real APF channel).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Both kinds share the two halves of flow control. Sending: bytes wait in out until the
 * peer's credit covers them. Receiving: the peer may send rx_allow more bytes; what our
 * consumer took is credited back once it reaches half a window, so a sender never stalls on
 * a window the consumer already emptied. A frame over rx_allow ends the link (a peer that
 * does not keep to the protocol).
 *
 * A channel's id is free once both sides sent CLOSE (or OPEN_FAIL answered the OPEN); the
 * struct goes once its id is free and its local end let go of it (the console module freed
 * the stream, or the APF channel closed with no write callback due). */
#include "cluster_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct mps_stream_impl console_impl;

static void
chan_free_if_done(struct lchan *c)
{
    if (!c->released)
        return;
    if (c->console ? (c->stream_live || c->opening)
                   : (c->chan || c->chan_opening || c->writes_pending))
        return;
    const struct mps_api *api = c->ci->api;
    if (c->deadline)
        api->timer_stop(c->deadline);
    if (c->defer)
        api->timer_stop(c->defer);
    free(c->out);
    free(c->rx);
    free(c);
}

/* Both CLOSEs exchanged, OPEN_FAIL, or the link is gone: the id is free. */
static void
chan_release(struct lchan *c)
{
    if (c->released)
        return;
    c->released = true;
    if (c->l)
        link_chan_remove(c->l, c);
    if (c->counted)
        c->ci->ctr.channels--;
    c->counted = false;
}

static void
send_close(struct lchan *c)
{
    if (c->sent_close)
        return;
    c->sent_close = true;
    if (c->l && c->sent_open)
        link_send(c->l, LINK_CLOSE, c->id, NULL, 0);
    if (c->got_close || !c->sent_open)
        chan_release(c);
}

/* ------------------------------------------------------------------ flow control */

static int
out_append(struct lchan *c, const void *data, size_t len)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + len > c->out_cap && c->out_off) { /* compact first */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return -ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* The channel may send DATA now: open, its link up, no CLOSE sent. */
static bool
chan_can_send(const struct lchan *c)
{
    return c->l && c->l->state == LS_UP && c->sent_open && !c->opening && !c->sent_close;
}

/* As much of data as the peer's credit covers, in frames; returns how many bytes went. When
 * a send fails the link takes the channel with it (c->l is NULL then): callers check. */
static size_t
send_within_credit(struct lchan *c, const uint8_t *data, size_t len)
{
    size_t sent = 0;
    while (sent < len && c->tx_credit) {
        size_t n = len - sent;
        if (n > c->tx_credit)
            n = (size_t)c->tx_credit;
        if (n > LINK_DATA_MAX)
            n = LINK_DATA_MAX;
        link_send(c->l, LINK_DATA, c->id, data + sent, n);
        if (!c->l)
            return sent;
        c->tx_credit -= n;
        c->ci->ctr.bytes_out += n;
        if (c->console && c->stream_live) /* left our queue: the console may write more */
            c->ci->api->stream_sent(c->s, n);
        sent += n;
    }
    return sent;
}

/* Send what the credit allows; then EOF and CLOSE once everything queued went. */
static void
chan_pump(struct lchan *c)
{
    if (!chan_can_send(c))
        return;
    size_t sent = send_within_credit(c, c->out + c->out_off, c->out_len - c->out_off);
    if (!c->l)
        return; /* the send failed: the link ended the channel */
    c->out_off += sent;
    if (c->out_len > c->out_off)
        return;
    if (c->eof_req && !c->sent_eof) {
        c->sent_eof = true;
        link_send(c->l, LINK_EOF, c->id, NULL, 0);
    }
    if (c->close_req && c->l)
        send_close(c);
}

/* Bytes from our end of the channel: straight onto the link while nothing waits and the credit
 * covers them (no copy into out), the rest queued for chan_pump. 0 or -ENOMEM. */
static int
chan_send(struct lchan *c, const uint8_t *data, size_t len)
{
    size_t sent = 0;
    if (c->out_len == c->out_off && chan_can_send(c)) {
        sent = send_within_credit(c, data, len);
        if (!c->l)
            return 0; /* the send failed: the link ended the channel */
    }
    return len > sent ? out_append(c, data + sent, len - sent) : 0;
}

/* Our consumer took n bytes: credit them once half a window is due. */
static void
chan_consumed(struct lchan *c, uint64_t n)
{
    c->rx_unacked += n;
    if (!c->l || c->sent_close || c->got_close || c->rx_unacked < c->window / 2)
        return;
    uint64_t grant = c->rx_unacked;
    c->rx_unacked = 0;
    c->rx_allow += grant;
    link_send32(c->l, LINK_CREDIT, c->id, (uint32_t)grant);
}

/* ----------------------------------------------------------------- console channels */

static void
console_deliver(struct lchan *c)
{
    const struct mps_api *api = c->ci->api;
    if (!c->stream_live || !c->reading)
        return;
    if (c->rx_len) {
        size_t n = c->rx_len;
        c->rx_len = 0; /* before the call: the reader may close or stop inside it */
        api->stream_deliver(c->s, c->rx, n, 0);
        chan_consumed(c, n);
    }
    if (c->end_status && !c->eof_delivered && c->reading && c->stream_live && !c->rx_len) {
        c->eof_delivered = true;
        api->stream_deliver(c->s, NULL, 0, c->end_status);
    }
}

static void
console_defer_run(void *arg)
{
    struct lchan *c = arg;
    if (c->closed_due && c->stream_live) {
        c->closed_due = false;
        c->ci->api->stream_closed(c->s, 0); /* -> console_free */
        return;
    }
    console_deliver(c);
}

static void
console_defer(struct lchan *c)
{
    if (!c->defer)
        c->defer = c->ci->api->timer_start(c->ci->mi, 0, console_defer_run, c);
    else
        c->ci->api->timer_restart(c->defer, 0);
}

static void
console_ended(struct lchan *c, int status)
{
    if (!c->end_status)
        c->end_status = status;
    c->out_off = c->out_len; /* nobody left to send it to */
    console_deliver(c);
}

/* The answer to the console module's chan_open: exactly once. */
static void
console_answer(struct lchan *c, mps_stream *s, int status)
{
    c->opening = false;
    mps_open_cb cb = c->open_cb;
    c->open_cb = NULL;
    if (!s)
        c->ci->ctr.route_failed++;
    cb(c->open_arg, s, status);
}

static void
console_deadline_fired(void *arg)
{
    struct lchan *c = arg;
    struct cl_inst *ci = c->ci;
    if (c->opening) {
        CL_LOG(ci, MPS_LOG_WARNING,
               "device %s port %u on node %s: no answer within %ld ms (console %s:%u)", c->device,
               c->port, c->l ? c->l->node : "?", ci->open_timeout_ms, c->origin, c->origin_port);
        c->close_req = true;
        send_close(c); /* the id stays taken until the other node answers it */
        console_answer(c, NULL, -ETIMEDOUT);
    } else if (c->close_req && !c->sent_close) { /* closed, and the device never took it */
        c->out_off = c->out_len;
        chan_pump(c);
        send_close(c);
    }
    chan_free_if_done(c);
}

static int
console_read_start(void *impl)
{
    struct lchan *c = impl;
    c->reading = true;
    if (c->rx_len || (c->end_status && !c->eof_delivered))
        console_defer(c);
    return 0;
}

static int
console_read_stop(void *impl)
{
    struct lchan *c = impl;
    c->reading = false;
    return 0;
}

static int
console_write(void *impl, const struct mps_iov *iov, unsigned n)
{
    struct lchan *c = impl;
    if (c->close_req || c->eof_req || c->got_close || !c->l)
        return -EPIPE;
    for (unsigned i = 0; i < n; i++)
        if (chan_send(c, iov[i].base, iov[i].len) < 0)
            return -ENOMEM;
    return 0;
}

static int
console_shutdown(void *impl)
{
    struct lchan *c = impl;
    if (!c->eof_req) {
        c->eof_req = true;
        chan_pump(c);
    }
    return 0;
}

static void
console_close(void *impl)
{
    struct lchan *c = impl;
    struct cl_inst *ci = c->ci;
    c->reading = false;
    c->close_req = true;
    if (c->out_len > c->out_off && c->l && !c->got_close && c->deadline)
        ci->api->timer_restart(c->deadline, (uint64_t)ci->open_timeout_ms); /* flush limit */
    else
        c->out_off = c->out_len;
    chan_pump(c);
    c->closed_due = true;
    console_defer(c);
}

static void
console_free(void *impl)
{
    struct lchan *c = impl;
    c->stream_live = false;
    c->s = NULL;
    chan_free_if_done(c);
}

static const struct mps_stream_impl console_impl = {
    .kind = "cluster",
    .read_start = console_read_start,
    .read_stop = console_read_stop,
    .write = console_write,
    .shutdown = console_shutdown,
    .close = console_close,
    .free = console_free,
};

int
console_chan_open(struct link *l, const struct mps_chan_req *req, const char *target,
                  mps_open_cb cb, void *arg)
{
    struct cl_inst *ci = l->ci;
    if (strlen(req->device) > LINK_NAME_MAX || strlen(target) > LINK_NAME_MAX)
        return -EINVAL;
    struct lchan *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ci = ci;
    c->console = true;
    c->opening = true;
    c->open_cb = cb;
    c->open_arg = arg;
    c->window = (uint32_t)ci->window;
    c->rx_allow = c->window;
    snprintf(c->device, sizeof(c->device), "%s", req->device);
    snprintf(c->target, sizeof(c->target), "%s", target);
    c->port = req->port;
    if (req->console) {
        snprintf(c->origin, sizeof(c->origin), "%s", ci->api->peer_host(req->console));
        c->origin_port = ci->api->peer_port(req->console);
    } else {
        snprintf(c->origin, sizeof(c->origin), "%s",
                 req->origin_addr ? req->origin_addr : "0.0.0.0");
        c->origin_port = req->origin_port;
    }
    int rc = link_chan_add(l, c, 0);
    if (rc == 0 && !(c->deadline = ci->api->timer_start(ci->mi, (uint64_t)ci->open_timeout_ms,
                                                        console_deadline_fired, c))) {
        link_chan_remove(l, c);
        rc = -ENOMEM;
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    CL_LOG(ci, MPS_LOG_INFO, "console %s:%u -> device %s port %u: held by node %s, routing there",
           c->origin, c->origin_port, c->device, c->port, l->node);
    if (l->state == LS_UP)
        chan_link_up(c);
    return 0;
}

void
chan_link_up(struct lchan *c)
{
    if (!c->console || c->sent_open || !c->opening)
        return;
    struct link_open o = {.port = c->port, .origin_port = c->origin_port, .window = c->window};
    snprintf(o.device, sizeof(o.device), "%s", c->target);
    snprintf(o.origin, sizeof(o.origin), "%s", c->origin);
    uint8_t p[LINK_OPEN_MAX];
    size_t n = link_open_encode(p, &o);
    c->sent_open = true;
    link_send(c->l, LINK_OPEN, c->id, p, n);
}

static void
console_open_ok(struct lchan *c, const struct link_frame *f)
{
    struct cl_inst *ci = c->ci;
    if (!c->opening) /* we gave up waiting (CLOSE sent): its CLOSE ends it */
        return;
    c->tx_credit = link_get32(f->payload);
    char peer[LINK_NAME_MAX + 8];
    snprintf(peer, sizeof(peer), "%s:%u", c->device, c->port);
    mps_stream *s = ci->api->stream_new(ci->mi, &console_impl, c, peer);
    if (!s) {
        c->close_req = true;
        send_close(c);
        console_answer(c, NULL, -ENOMEM);
        return;
    }
    c->s = s;
    c->stream_live = true;
    ci->ctr.routed++;
    CL_LOG(ci, MPS_LOG_INFO, "console %s:%u reaches device %s port %u on node %s", c->origin,
           c->origin_port, c->device, c->port, c->l->node);
    console_answer(c, s, 0);
}

static void
console_open_fail(struct lchan *c, const struct link_frame *f)
{
    struct cl_inst *ci = c->ci;
    uint32_t code = link_get32(f->payload);
    int status =
        code == ENOENT || code == ECONNREFUSED || code == EMFILE ? -(int)code : -ECONNABORTED;
    if (c->opening)
        CL_LOG(ci, MPS_LOG_INFO,
               "console %s:%u -> device %s port %u on node %s: refused there (%s)", c->origin,
               c->origin_port, c->device, c->port, c->l->node, strerror(-status));
    chan_release(c); /* OPEN_FAIL answers the OPEN: no CLOSE follows */
    if (c->opening)
        console_answer(c, NULL, status);
}

/* ------------------------------------------------------------------ device channels */

static void device_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

static void
device_chan_closed(void *arg, int status)
{
    struct lchan *c = arg;
    (void)status;
    c->chan = NULL;
    c->chan_closing = false;
    chan_free_if_done(c);
}

static void
device_chan_close(struct lchan *c)
{
    if (c->chan && !c->chan_closing) {
        c->chan_closing = true;
        c->ci->api->close(c->chan, device_chan_closed, c);
    }
}

static void
device_refuse(struct lchan *c, int err)
{
    struct cl_inst *ci = c->ci;
    const char *why = err == ENOENT         ? "the device is not connected here"
                      : err == ECONNREFUSED ? "the device does not forward this port"
                      : err == EMFILE       ? "the channel limit is reached"
                                            : strerror(err);
    ci->ctr.serve_failed++;
    CL_LOG(ci, MPS_LOG_INFO, "node %s's console %s:%u -> device %s port %u: refused: %s",
           c->l ? c->l->node : "?", c->origin, c->origin_port, c->device, c->port, why);
    if (c->l) {
        uint8_t p[4 + 64];
        size_t wl = strlen(why) > 64 ? 64 : strlen(why);
        link_put32(p, (uint32_t)err);
        memcpy(p + 4, why, wl);
        link_send(c->l, LINK_OPEN_FAIL, c->id, p, 4 + wl);
    }
    chan_release(c);
    chan_free_if_done(c);
}

static void
device_opened(void *arg, mps_stream *chan, int status)
{
    struct lchan *c = arg;
    struct cl_inst *ci = c->ci;
    c->chan_opening = false;
    if (!chan) {
        if (!c->released)
            return device_refuse(c, -status);
        return chan_free_if_done(c);
    }
    if (c->released || c->got_close || !c->l) { /* the console gave up meanwhile */
        ci->api->close(chan, NULL, NULL);
        return chan_free_if_done(c);
    }
    c->chan = chan;
    ci->ctr.served++;
    link_send32(c->l, LINK_OPEN_OK, c->id, c->window);
    CL_LOG(ci, MPS_LOG_INFO, "node %s's console %s:%u reaches device %s port %u here", c->l->node,
           c->origin, c->origin_port, c->device, c->port);
    c->chan_reading = true;
    if (ci->api->read_start(chan, device_read, c) < 0) {
        c->close_req = true;
        device_chan_close(c);
        chan_pump(c);
    }
}

static void
device_open(struct link *l, const struct link_frame *f)
{
    struct cl_inst *ci = l->ci;
    struct link_open o;
    if (link_open_decode(f->payload, f->len, &o) < 0)
        return link_fail(l, -EPROTO, "malformed OPEN");
    struct lchan *c = calloc(1, sizeof(*c));
    if (!c) { /* answer so the console is not left waiting */
        uint8_t p[4];
        link_put32(p, ENOMEM);
        link_send(l, LINK_OPEN_FAIL, f->chan, p, sizeof(p));
        return;
    }
    c->ci = ci;
    c->sent_open = true; /* the id exists on both sides */
    c->window = (uint32_t)ci->window;
    c->rx_allow = c->window;
    c->tx_credit = o.window;
    snprintf(c->device, sizeof(c->device), "%s", o.device);
    snprintf(c->origin, sizeof(c->origin), "%s", o.origin);
    c->port = o.port;
    c->origin_port = o.origin_port;
    int rc = link_chan_add(l, c, f->chan);
    if (rc == -EEXIST || rc == -EINVAL) {
        free(c);
        return link_fail(l, -EPROTO, "OPEN for channel %u, which is in use or invalid", f->chan);
    }
    if (rc < 0) {
        c->id = f->chan;
        c->l = l;
        c->released = false;
        return device_refuse(c, -rc);
    }
    struct mps_chan_req req = {
        .device = o.device, .port = o.port, .origin_addr = o.origin, .origin_port = o.origin_port};
    c->chan_opening = true;
    rc = ci->api->chan_open(ci->mi, &req, device_opened, c);
    if (rc < 0) {
        c->chan_opening = false;
        device_refuse(c, -rc);
    }
}

/* The device sent data: on to the console's node within its credit, the rest waits (and the
 * APF window closes behind it: read_stop withholds WINDOW_ADJUST). */
static void
device_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct lchan *c = arg;
    (void)s;
    if (status < 0) {
        c->chan_reading = false;
        c->eof_req = status == MPS_EOF;
        c->close_req = true;
        device_chan_close(c);
        chan_pump(c);
        return;
    }
    if (c->sent_close || c->close_req)
        return;
    if (chan_send(c, data->base, data->len) < 0) {
        c->close_req = true;
        device_chan_close(c);
        chan_pump(c);
    }
    if (c->out_len > c->out_off && c->chan_reading && c->chan) {
        c->chan_reading = false;
        c->ci->api->read_stop(c->chan);
    }
}

static void
device_written(void *arg, int status)
{
    struct lchan *c = arg;
    c->writes_pending--;
    if (status == 0 && c->chan && !c->chan_closing) {
        uint64_t left = c->written - c->ci->api->write_queue_size(c->chan);
        if (left > c->credited) {
            chan_consumed(c, left - c->credited);
            c->credited = left;
        }
    }
    chan_free_if_done(c);
}

/* ---------------------------------------------------------------------- frames in */

static void
chan_data(struct lchan *c, const struct link_frame *f)
{
    struct cl_inst *ci = c->ci;
    if (f->len > c->rx_allow)
        return link_fail(c->l, -EPROTO, "channel %u: %u bytes beyond the window", c->id, f->len);
    c->rx_allow -= f->len;
    ci->ctr.bytes_in += f->len;
    if (!c->console) {
        if (!c->chan || c->chan_closing) {
            chan_consumed(c, f->len); /* nobody to give it to: let the sender finish */
            return;
        }
        struct mps_iov iov = {f->payload, f->len};
        if (ci->api->write(c->chan, &iov, 1, device_written, c) == 0) {
            c->writes_pending++;
            c->written += f->len;
        } else {
            chan_consumed(c, f->len);
        }
        return;
    }
    if (!c->stream_live || c->close_req) {
        chan_consumed(c, f->len);
    } else if (c->reading && !c->rx_len) {
        ci->api->stream_deliver(c->s, f->payload, f->len, 0);
        chan_consumed(c, f->len);
    } else {
        if (c->rx_len + f->len > c->rx_cap) {
            size_t cap = c->rx_cap ? c->rx_cap : 16384;
            while (cap < c->rx_len + f->len)
                cap *= 2;
            uint8_t *p = realloc(c->rx, cap);
            if (!p)
                return link_fail(c->l, -ENOMEM, "out of memory");
            c->rx = p;
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, f->payload, f->len);
        c->rx_len += f->len;
    }
}

static void
chan_credit(struct lchan *c, uint32_t n)
{
    c->tx_credit += n;
    chan_pump(c);
    if (!c->console && c->chan && !c->chan_closing && !c->chan_reading &&
        c->out_len == c->out_off && !c->close_req) {
        c->chan_reading = true;
        c->ci->api->read_start(c->chan, device_read, c);
    }
}

static void
chan_close_received(struct lchan *c)
{
    c->got_close = true;
    if (c->console) {
        if (c->opening)
            console_answer(c, NULL, -ECONNABORTED);
        console_ended(c, -ECONNRESET);
    } else {
        device_chan_close(c);
    }
    send_close(c); /* the answer; both sent: the id is free */
    chan_release(c);
    chan_free_if_done(c);
}

void
chan_frame(struct link *l, const struct link_frame *f)
{
    struct lchan *c = f->chan && f->chan <= l->cap ? l->chans[f->chan - 1] : NULL;
    if (f->type == LINK_OPEN) {
        if (l->dialled || c)
            return link_fail(l, -EPROTO, "unexpected OPEN for channel %u", f->chan);
        return device_open(l, f);
    }
    if (!c && f->type == LINK_CLOSE) /* crossed our OPEN_FAIL: that ended it already */
        return;
    if (!c) /* a channel both sides have closed: nothing else can still be for it */
        return link_fail(l, -EPROTO, "frame %u for channel %u, which is not open", f->type,
                         f->chan);
    bool console_only = f->type == LINK_OPEN_OK || f->type == LINK_OPEN_FAIL;
    if ((console_only && !c->console) || ((f->type == LINK_CREDIT || console_only) && f->len < 4))
        return link_fail(l, -EPROTO, "malformed frame %u for channel %u", f->type, f->chan);
    switch (f->type) {
    case LINK_OPEN_OK:
        return console_open_ok(c, f);
    case LINK_OPEN_FAIL:
        console_open_fail(c, f);
        return chan_free_if_done(c);
    case LINK_DATA:
        return chan_data(c, f);
    case LINK_CREDIT:
        return chan_credit(c, link_get32(f->payload));
    case LINK_EOF:
        c->got_eof = true;
        if (c->console) {
            if (!c->end_status)
                c->end_status = MPS_EOF;
            console_deliver(c);
        } else if (c->chan && !c->chan_closing) {
            c->ci->api->shutdown(c->chan);
        }
        return;
    case LINK_CLOSE:
        return chan_close_received(c);
    default:
        return;
    }
}

void
chan_link_gone(struct lchan *c, int status)
{
    c->l = NULL;
    chan_release(c);
    if (c->console) {
        if (c->opening)
            console_answer(
                c, NULL, status == -ETIMEDOUT || status == -ECONNABORTED ? status : -EHOSTUNREACH);
        else
            console_ended(c, status == -ETIMEDOUT ? -ETIMEDOUT : -ECONNABORTED);
    } else {
        device_chan_close(c);
    }
    chan_free_if_done(c);
}
