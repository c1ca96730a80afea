/* apf_channel.c - APF channels: id table, both windows, close handshake, channel streams.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Memory per channel is bounded whatever the peers do: what the device sends is bounded by
 * the window we granted (plus a tolerance for implementations that overrun it), and the
 * window is refilled only for bytes the owner actually took; what the owner writes is sent
 * within the device's window and while the tunnel's own output is not backed up, and the
 * owner sees the queue (write_queue_size) to stop feeding us. */
#include "apf_channel.h"
#include "apf_alerts.h"
#include "apf_chunk.h"
#include "log.h"
#include "splice.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tunnel's channels, indexed by our (local) id. */
struct apf_chan_table {
    struct apf_channel **slot;
    uint32_t cap, open;
    uint32_t hint;  /* where the search for a free id starts */
    uint32_t drain; /* where apf_channels_output_ready starts */
};

enum chan_state {
    CHAN_OPENING,    /* we sent OPEN (forwarded-tcpip): waiting for the device's answer */
    CHAN_CONNECTING, /* the device sent OPEN (direct-tcpip): we are connecting out */
    CHAN_OPEN,
};

struct apf_channel {
    mps_stream base;     /* the owner's handle; first member */
    struct apf_tunnel *t; /* NULL once detached: both CLOSEs exchanged or tunnel gone */
    uint32_t local_id, remote_id;
    uint16_t port;
    enum chan_state state;
    bool close_sent, close_rcvd;
    bool close_after_flush; /* owner shut down or closed: CLOSE once the queue is out */
    bool reading;
    bool delivering;
    bool eof_pending; /* tell the owner end_status once rxq is delivered */
    bool eof_delivered;
    bool owner_released; /* the owner closed the stream, or never got it */
    int end_status;
    struct loop_call deliver_call, closed_call; /* queued: they still point at us */
    int64_t rwin;      /* credit granted to the device and not used yet (may dip below 0) */
    uint32_t consumed; /* bytes the owner took since our last WINDOW_ADJUST */
    uint64_t pwin;     /* the device's window: what we may still send */
    struct chan_chunk *rxq, **rxq_tail;
    struct chan_chunk *txq, **txq_tail;
    mps_open_cb open_cb;
    void *open_arg;
    bool direct;                   /* device-initiated direct-tcpip, spliced to a server */
    struct outbound_conn *connect; /* CHAN_CONNECTING: the connect under way */
    char console[300]; /* the other end: console address, or the server the device asked for */
};

static const struct stream_ops chan_ops;

/* --------------------------------------------------------------------- helpers */

/* The tunnel's table; NULL before its first channel. */
static struct apf_chan_table *
table(const struct apf_tunnel *t)
{
    return *apf_tunnel_chan_table((struct apf_tunnel *)t);
}

static struct apf_channel *
chan_lookup(const struct apf_tunnel *t, uint32_t id)
{
    struct apf_chan_table *tab = table(t);
    return tab && id < tab->cap ? tab->slot[id] : NULL;
}

uint32_t
apf_channels_in_use(const struct apf_tunnel *t)
{
    return table(t) ? table(t)->open : 0;
}

static void
chan_maybe_free(struct apf_channel *c)
{
    if (c->t || !c->owner_released || c->deliver_call.queued || c->closed_call.queued)
        return;
    chan_chunks_free(&c->rxq, &c->rxq_tail);
    chan_chunks_free(&c->txq, &c->txq_tail);
    free(c);
}

/* Both CLOSEs exchanged, or the tunnel is gone: free the id and leave the table. */
static void
chan_detach(struct apf_channel *c)
{
    struct apf_tunnel *t = c->t;
    if (!t)
        return;
    if (c->state == CHAN_OPEN && c->direct) {
        char id[200];
        log_info("Channel between Intel remote client %s and authorized server %s closed. "
                 "Channel ID [%u:%u] %s", apf_tunnel_name(t), c->console, c->local_id,
                 c->remote_id, apf_tunnel_ident(t, id, sizeof(id)));
    } else if (c->state == CHAN_OPEN) {
        /* The reference's line for every console channel that ends, whoever ends it: the
         * statistics report's "management-console closed (includes unexpected or connection
         * shutdowns)". c->console is "ADDRESS:PORT"; the reference names the address. */
        char id[200];
        const char *colon = strrchr(c->console, ':');
        int hostlen = colon ? (int)(colon - c->console) : (int)strlen(c->console);
        log_info("[%.*s] management console has shutdown. Channel between Intel remote client "
                 "%s and management console %s closed. Channel ID [%u:%u] %s", hostlen,
                 c->console, apf_tunnel_name(t), c->console, c->local_id, c->remote_id,
                 apf_tunnel_ident(t, id, sizeof(id)));
        LOOP_STAT_INC(apf_tunnel_env(t)->stats.channels_closed);
    }
    table(t)->slot[c->local_id] = NULL;
    table(t)->open--;
    apf_tunnel_count_channels(t, -1);
    c->t = NULL;
    chan_chunks_free(&c->txq, &c->txq_tail);
}

static void chan_deliver(struct apf_channel *c);

static void
chan_deliver_deferred(struct loop_call *call)
{
    struct apf_channel *c = loop_container_of(call, struct apf_channel, deliver_call);
    chan_deliver(c);
    chan_maybe_free(c);
}

static void
chan_schedule_delivery(struct apf_channel *c)
{
    loop_call_queue(c->base.loop, &c->deliver_call); /* once: it delivers everything queued */
}

static void
chan_end(struct apf_channel *c, int status)
{
    if (c->eof_pending)
        return;
    c->eof_pending = true;
    c->end_status = status;
    if (!c->owner_released)
        chan_schedule_delivery(c);
}

static void
chan_send_close(struct apf_channel *c)
{
    struct apf_tunnel *t = c->t;
    if (!t || c->close_sent)
        return;
    uint8_t msg[8];
    c->close_sent = true;
    apf_tunnel_send(t, msg, apf_encode_channel_close(msg, c->remote_id), NULL, 0);
    if (c->close_rcvd) {
        chan_detach(c);
        chan_maybe_free(c);
    }
}

/* Return credit for what the owner consumed, in batches: AMT and our peers cope with tiny
 * adjustments, but one per read would double the message count. */
static void
chan_maybe_adjust(struct apf_channel *c)
{
    struct apf_tunnel *t = c->t;
    if (!t || c->close_sent || c->close_rcvd || c->state != CHAN_OPEN)
        return;
    if (c->consumed < (uint32_t)apf_tunnel_env(t)->cfg->channel_window / 2)
        return;
    uint8_t msg[16];
    uint32_t add = c->consumed;
    c->consumed = 0;
    c->rwin += add;
    apf_tunnel_send(t, msg, apf_encode_window_adjust(msg, c->remote_id, add), NULL, 0);
}

/* Send up to len bytes of data within the device's window and the packet size; returns how
 * many were sent. */
static size_t
chan_send_data(struct apf_channel *c, const uint8_t *data, size_t len)
{
    struct apf_tunnel *t = c->t;
    size_t sent = 0;
    size_t max_packet = (size_t)apf_tunnel_env(t)->cfg->max_packet_size;
    while (sent < len && c->pwin > 0 && apf_tunnel_has_room(t)) {
        size_t n = len - sent;
        if (n > c->pwin)
            n = (size_t)c->pwin;
        if (n > max_packet)
            n = max_packet;
        uint8_t hdr[APF_CHANNEL_DATA_HDR_LEN];
        apf_encode_channel_data_header(hdr, c->remote_id, (uint32_t)n);
        if (apf_tunnel_send(t, hdr, sizeof(hdr), data + sent, n) < 0)
            break;
        c->pwin -= n;
        sent += n;
    }
    return sent;
}

/* Push the queue into the tunnel as far as windows allow and at most budget bytes; CLOSE once
 * drained if asked. */
static size_t
chan_pump(struct apf_channel *c, size_t budget)
{
    size_t total = 0;
    if (!c->t || c->state != CHAN_OPEN || c->close_sent)
        return 0;
    while (c->txq && budget) {
        struct chan_chunk *k = c->txq;
        size_t want = k->len - k->off;
        size_t n = chan_send_data(c, k->data + k->off, want < budget ? want : budget);
        if (n == 0)
            break;
        budget -= n;
        total += n;
        k->off += n;
        if (k->off == k->len) {
            c->txq = k->next;
            if (!c->txq)
                c->txq_tail = &c->txq;
            free(k);
        }
        if (!c->owner_released)
            stream_sent(&c->base, n);
        if (!c->t)
            return total;
    }
    if (!c->txq && c->close_after_flush)
        chan_send_close(c);
    return total;
}

/* ---------------------------------------------------------------- stream ops */

static void
chan_deliver(struct apf_channel *c)
{
    if (c->delivering || c->owner_released)
        return;
    c->delivering = true;
    while (c->reading && !c->base.closing && c->rxq) {
        struct chan_chunk *k = c->rxq;
        c->rxq = k->next;
        if (!c->rxq)
            c->rxq_tail = &c->rxq;
        c->consumed += (uint32_t)k->len;
        stream_deliver(&c->base, k->data, k->len, 0);
        free(k);
    }
    if (!c->rxq && c->eof_pending && !c->eof_delivered && c->reading && !c->base.closing) {
        c->eof_delivered = true;
        stream_deliver(&c->base, NULL, 0, c->end_status);
    }
    c->delivering = false;
    chan_maybe_adjust(c);
}

static int
chan_read_start(mps_stream *s)
{
    struct apf_channel *c = (struct apf_channel *)s;
    if (!c->reading) {
        c->reading = true;
        if (c->rxq || c->eof_pending)
            chan_schedule_delivery(c);
    }
    return 0;
}

static int
chan_read_stop(mps_stream *s)
{
    ((struct apf_channel *)s)->reading = false;
    return 0;
}

static int
chan_write(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    struct apf_channel *c = (struct apf_channel *)s;
    if (!c->t || c->close_sent || c->close_rcvd || c->close_after_flush)
        return -EPIPE;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = iov[i].base;
        size_t len = iov[i].len, off = 0;
        if (!c->txq) { /* nothing queued ahead: send straight from the caller's buffer */
            off = chan_send_data(c, p, len);
            if (off)
                stream_sent(s, off);
        }
        if (off < len && chan_chunk_append(&c->txq_tail, p + off, len - off) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int
chan_shutdown(mps_stream *s)
{
    struct apf_channel *c = (struct apf_channel *)s;
    c->close_after_flush = true;
    if (!c->txq)
        chan_send_close(c);
    return 0;
}

static void
chan_closed_deferred(struct loop_call *call)
{
    struct apf_channel *c = loop_container_of(call, struct apf_channel, closed_call);
    stream_closed(&c->base, 0); /* -> chan_free */
}

static void
chan_close(mps_stream *s)
{
    struct apf_channel *c = (struct apf_channel *)s;
    c->reading = false;
    chan_chunks_free(&c->rxq, &c->rxq_tail);
    if (c->t && !c->close_sent) {
        c->close_after_flush = true;
        if (!c->txq)
            chan_send_close(c);
    }
    loop_call_queue(s->loop, &c->closed_call);
}

static void
chan_free(mps_stream *s)
{
    struct apf_channel *c = (struct apf_channel *)s;
    c->owner_released = true;
    chan_maybe_free(c);
}

static const struct stream_ops chan_ops = {
    .kind = "channel",
    .read_start = chan_read_start,
    .read_stop = chan_read_stop,
    .write = chan_write,
    .shutdown = chan_shutdown,
    .close = chan_close,
    .free = chan_free,
};

/* ------------------------------------------------------------------- opening */

/* A free id, growing the table by doubling up to MaxChannelsPerDevice. */
static int
chan_alloc_id(struct apf_tunnel *t, uint32_t *id_r)
{
    uint32_t max = (uint32_t)apf_tunnel_env(t)->cfg->max_channels;
    struct apf_chan_table **slot = apf_tunnel_chan_table(t);
    if (!*slot && !(*slot = calloc(1, sizeof(**slot))))
        return -ENOMEM;
    struct apf_chan_table *tab = *slot;
    if (tab->open >= max)
        return -EMFILE;
    if (tab->open == tab->cap) {
        uint32_t cap = tab->cap ? tab->cap * 2 : 4;
        if (cap > max)
            cap = max;
        struct apf_channel **n = realloc(tab->slot, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        memset(n + tab->cap, 0, (cap - tab->cap) * sizeof(*n));
        tab->hint = tab->cap;
        tab->slot = n;
        tab->cap = cap;
    }
    /* Rotate through free ids rather than reuse the one just freed at once: a late message
     * for an old channel then cannot hit its successor. */
    for (uint32_t i = 0; i < tab->cap; i++) {
        uint32_t id = (tab->hint + i) % tab->cap;
        if (!tab->slot[id]) {
            tab->hint = id + 1;
            *id_r = id;
            return 0;
        }
    }
    return -EMFILE;
}

/* Put c into the table under its id. */
static void
chan_insert(struct apf_tunnel *t, struct apf_channel *c)
{
    table(t)->slot[c->local_id] = c;
    table(t)->open++;
    apf_tunnel_count_channels(t, 1);
}

int
apf_channel_open(struct apf_env *env, const struct mps_chan_req *req, mps_open_cb cb, void *arg)
{
    struct apf_tunnel *t = apf_env_find(env, req->device);
    return t ? apf_channel_open_on(t, req, cb, arg) : -ENOENT;
}

int
apf_channel_open_on(struct apf_tunnel *t, const struct mps_chan_req *req, mps_open_cb cb,
                    void *arg)
{
    struct apf_env *env = apf_tunnel_env(t);
    if (!apf_tunnel_forwarding(t))
        return -ENOENT;
    const struct apf_forward *fw = apf_tunnel_forward(t, req->port);
    if (!fw)
        return -ECONNREFUSED;
    uint32_t id;
    int rc = chan_alloc_id(t, &id);
    if (rc < 0) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "refused a channel to port %u: %s", req->port,
                       rc == -EMFILE ? "MaxChannelsPerDevice reached" : "out of memory");
        return rc;
    }
    struct apf_channel *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    stream_init(&c->base, &chan_ops, env->loop);
    loop_call_init(&c->deliver_call, chan_deliver_deferred);
    loop_call_init(&c->closed_call, chan_closed_deferred);
    c->t = t;
    c->local_id = id;
    c->port = req->port;
    c->state = CHAN_OPENING;
    c->rwin = env->cfg->channel_window;
    c->rxq_tail = &c->rxq;
    c->txq_tail = &c->txq;
    c->open_cb = cb;
    c->open_arg = arg;
    const char *origin = req->origin_addr ? req->origin_addr : "0.0.0.0";
    uint16_t origin_port = req->origin_port;
    if (req->console) {
        origin = req->console->peer_host;
        origin_port = req->console->peer_port;
    }
    snprintf(c->console, sizeof(c->console), "%s:%u", origin, origin_port);
    stream_set_peer_name(&c->base, fw->address, req->port);
    chan_insert(t, c);

    size_t len = apf_encode_channel_open(NULL, APF_CHAN_FORWARDED, id, 0, fw->address, req->port,
                                         origin, origin_port);
    uint8_t *msg = malloc(len);
    if (!msg) {
        table(t)->slot[id] = NULL;
        table(t)->open--;
        apf_tunnel_count_channels(t, -1);
        free(c);
        return -ENOMEM;
    }
    apf_encode_channel_open(msg, APF_CHAN_FORWARDED, id, (uint32_t)env->cfg->channel_window,
                            fw->address, req->port, origin, origin_port);
    apf_tunnel_send(t, msg, len, NULL, 0);
    free(msg);
    return 0;
}

/* -------------------------------------------------------- device-initiated (direct) */

static void
send_open_failure(struct apf_tunnel *t, uint32_t recipient, uint32_t reason)
{
    uint8_t msg[24];
    apf_tunnel_send(t, msg, apf_encode_channel_open_failure(msg, recipient, reason), NULL, 0);
}

/* The connect for a direct-tcpip channel ended: confirm and splice, or refuse. */
static void
direct_connected(void *arg, mps_stream *s, int status)
{
    struct apf_channel *c = arg;
    struct apf_tunnel *t = c->t; /* set: the tunnel cancels the connect when it goes */
    c->connect = NULL;
    if (status < 0) {
        LOOP_STAT_INC(apf_tunnel_env(t)->stats.connection_errors);
        apf_tunnel_log(t, MPS_LOG_INFO, "asked for a direct-tcpip channel to %s: connect "
                       "failed: %s", c->console, uv_strerror(status));
        send_open_failure(t, c->remote_id, APF_OPEN_CONNECT_FAILED);
        chan_detach(c);
        chan_maybe_free(c);
        return;
    }
    uint8_t msg[24];
    c->state = CHAN_OPEN;
    c->owner_released = false; /* the splice owns the channel stream from now on */
    apf_tunnel_send(t, msg,
                    apf_encode_channel_open_confirmation(msg, c->remote_id, c->local_id,
                                                         (uint32_t)apf_tunnel_env(t)->cfg->channel_window),
                    NULL, 0);
    LOOP_STAT_INC(apf_tunnel_env(t)->stats.tcp_forwarded);
    char id[200];
    log_info("Channel between Intel remote client %s and authorized server %s opened "
             "(direct-tcpip, connected to %s). Channel ID [%u:%u] %s",
             apf_tunnel_name(t), c->console, s->peer, c->local_id, c->remote_id,
             apf_tunnel_ident(t, id, sizeof(id)));
    if (splice_streams(&c->base, s) < 0) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "direct-tcpip channel to %s: out of memory",
                       c->console);
        stream_close(s, NULL, NULL);
        stream_close(&c->base, NULL, NULL);
    }
}

/* The device opens a channel to host:port (WS-Eventing to a console, for one): allowed by
 * the authorized-servers filter, mpsd connects out and splices; else reason 1. */
static uint32_t
direct_open(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_env *env = apf_tunnel_env(t);
    uint32_t sender = m->u.channel_open.sender, port = m->u.channel_open.port;
    char host[256];
    if (!apf_target_allowed(t, m->u.channel_open.address, port, host, sizeof(host),
                            &env->stats.tcp_blocked, "asked for a direct-tcpip channel to",
                            "refused")) {
        send_open_failure(t, sender, APF_OPEN_ADMINISTRATIVELY_PROHIBITED);
        return 0;
    }
    uint32_t id;
    int rc = chan_alloc_id(t, &id);
    struct apf_channel *c = rc == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "refused a direct-tcpip channel to %s:%u: %s", host,
                       port, rc == -EMFILE ? "MaxChannelsPerDevice reached" : "out of memory");
        send_open_failure(t, sender, APF_OPEN_RESOURCE_SHORTAGE);
        return 0;
    }
    stream_init(&c->base, &chan_ops, env->loop);
    loop_call_init(&c->deliver_call, chan_deliver_deferred);
    loop_call_init(&c->closed_call, chan_closed_deferred);
    c->t = t;
    c->local_id = id;
    c->remote_id = sender;
    c->direct = true;
    c->state = CHAN_CONNECTING;
    c->owner_released = true; /* nobody holds the stream until it is spliced */
    c->rwin = env->cfg->channel_window;
    c->pwin = m->u.channel_open.window;
    c->rxq_tail = &c->rxq;
    c->txq_tail = &c->txq;
    c->port = (uint16_t)port;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(c->console, sizeof(c->console), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             port);
    stream_set_peer_name(&c->base, apf_tunnel_name(t), 0);
    chan_insert(t, c);
    struct outbound *ob = apf_env_outbound(env);
    c->connect = ob ? outbound_connect(ob, host, (uint16_t)port, OUTBOUND_CONNECT_TIMEOUT_MS,
                                       direct_connected, c)
                    : NULL;
    if (!c->connect) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "refused a direct-tcpip channel to %s: out of memory "
                       "or too many connects under way", c->console);
        send_open_failure(t, sender, APF_OPEN_RESOURCE_SHORTAGE);
        chan_detach(c);
        chan_maybe_free(c);
        return 0;
    }
    apf_tunnel_log(t, MPS_LOG_DEBUG, "direct-tcpip channel %u to %s: connecting", id,
                   c->console);
    return 0;
}

/* ---------------------------------------------------------------- tunnel input */

uint32_t
apf_input_channel_open(struct apf_tunnel *t, const struct apf_msg *m)
{
    uint32_t reason = APF_OPEN_ADMINISTRATIVELY_PROHIBITED;
    char host[256];
    apf_str_copy(host, sizeof(host), m->u.channel_open.address);
    if (m->u.channel_open.kind == APF_CHAN_KIND_DIRECT) {
        return direct_open(t, m);
    } else if (m->u.channel_open.kind == APF_CHAN_KIND_FORWARDED) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "opened a forwarded-tcpip channel (%s:%u) mpsd never "
                       "asked for: refused", host, m->u.channel_open.port);
    } else {
        char type[64];
        apf_str_copy(type, sizeof(type), m->u.channel_open.type);
        apf_tunnel_log(t, MPS_LOG_WARNING, "asked for a channel of unknown type '%s'", type);
        reason = APF_OPEN_UNKNOWN_CHANNEL_TYPE;
    }
    uint8_t msg[24];
    apf_tunnel_send(t, msg, apf_encode_channel_open_failure(msg, m->u.channel_open.sender, reason),
                    NULL, 0);
    return 0;
}

uint32_t
apf_input_channel_open_confirm(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_channel *c = chan_lookup(t, m->u.open_confirm.recipient);
    if (!c || c->state != CHAN_OPENING) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "confirmed channel %u that is not opening",
                       m->u.open_confirm.recipient);
        return APF_DISC_PROTOCOL_ERROR;
    }
    c->state = CHAN_OPEN;
    c->remote_id = m->u.open_confirm.sender;
    c->pwin = m->u.open_confirm.window;
    LOOP_STAT_INC(apf_tunnel_env(t)->stats.channels_opened);
    char id[200];
    log_info("Channel between Intel remote client %s and management console %s opened. "
             "Channel ID [%u:%u] %s",
             apf_tunnel_name(t), c->console, c->local_id, c->remote_id,
             apf_tunnel_ident(t, id, sizeof(id)));
    c->open_cb(c->open_arg, &c->base, 0);
    return 0;
}

uint32_t
apf_input_channel_open_failure(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_channel *c = chan_lookup(t, m->u.open_failure.recipient);
    if (!c || c->state != CHAN_OPENING) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "refused channel %u that is not opening",
                       m->u.open_failure.recipient);
        return APF_DISC_PROTOCOL_ERROR;
    }
    apf_tunnel_log(t, MPS_LOG_INFO, "refused a channel to port %u for %s (reason %u)", c->port,
                   c->console, m->u.open_failure.reason);
    chan_detach(c);
    c->owner_released = true;
    c->open_cb(c->open_arg, NULL, -ECONNREFUSED);
    chan_maybe_free(c);
    return 0;
}

uint32_t
apf_input_channel_window_adjust(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_channel *c = chan_lookup(t, m->u.window_adjust.recipient);
    /* Adjusts may legitimately trail a close (the spec says to ignore them). */
    if (!c || c->state != CHAN_OPEN || c->close_sent || c->close_rcvd)
        return 0;
    uint64_t w = c->pwin + m->u.window_adjust.bytes;
    if (w > UINT32_MAX) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "raised the window of channel %u above 2^32-1",
                       c->local_id);
        return APF_DISC_PROTOCOL_ERROR;
    }
    c->pwin = w;
    (void)chan_pump(c, SIZE_MAX);
    return 0;
}

uint32_t
apf_input_channel_data(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_channel *c = chan_lookup(t, m->u.data.recipient);
    if (!c || c->state != CHAN_OPEN || c->close_rcvd) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent data on channel %u that is not open",
                       m->u.data.recipient);
        return APF_DISC_PROTOCOL_ERROR;
    }
    uint32_t len = m->u.data.data.len;
    if ((int64_t)len > c->rwin + apf_tunnel_env(t)->cfg->window_tolerance) {
        apf_tunnel_log(t, MPS_LOG_WARNING,
                       "overran the window of channel %u by %lld bytes (WindowTolerance %ld)",
                       c->local_id, (long long)len - c->rwin, apf_tunnel_env(t)->cfg->window_tolerance);
        return APF_DISC_PROTOCOL_ERROR;
    }
    c->rwin -= len;
    /* After our CLOSE (a console that half-closed) the owner still reads: what the device sent
     * before it saw the CLOSE is its answer. Nothing beyond the window is taken: no more
     * WINDOW_ADJUST goes out after a CLOSE. */
    if (c->owner_released || len == 0)
        return 0; /* nobody will read it: the device gets its CLOSE soon */
    if (c->reading && !c->rxq && !c->delivering && !c->base.closing) {
        c->consumed += len; /* the owner takes it now, straight from our input buffer */
        c->delivering = true;
        stream_deliver(&c->base, m->u.data.data.p, len, 0);
        c->delivering = false;
        chan_maybe_adjust(c);
        return 0;
    }
    if (chan_chunk_append(&c->rxq_tail, m->u.data.data.p, len) < 0)
        return APF_DISC_TEMPORARILY_UNAVAILABLE;
    return 0;
}

uint32_t
apf_input_channel_close(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_channel *c = chan_lookup(t, m->u.close.recipient);
    if (!c || c->close_rcvd) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "closed channel %u that is not open",
                       m->u.close.recipient);
        return APF_DISC_PROTOCOL_ERROR;
    }
    if (c->state == CHAN_CONNECTING) {
        /* The device gave up on its own direct-tcpip open (it can only know our id by
         * guessing): stop connecting, and free its id with the refusal it waits for. */
        apf_tunnel_log(t, MPS_LOG_INFO, "closed its direct-tcpip channel to %s while mpsd was "
                       "connecting", c->console);
        outbound_connect_cancel(c->connect);
        c->connect = NULL;
        send_open_failure(t, c->remote_id, APF_OPEN_CONNECT_FAILED);
        chan_detach(c);
        chan_maybe_free(c);
        return 0;
    }
    if (c->state == CHAN_OPENING) {
        /* A CLOSE instead of an answer: treat it as a refusal. */
        chan_detach(c);
        c->owner_released = true;
        c->open_cb(c->open_arg, NULL, -ECONNREFUSED);
        chan_maybe_free(c);
        return 0;
    }
    c->close_rcvd = true;
    /* The device is done: what we still had queued for it has nowhere to go. */
    chan_chunks_free(&c->txq, &c->txq_tail);
    if (!c->owner_released)
        stream_fail_writes(&c->base, -EPIPE);
    chan_end(c, MPS_EOF);
    if (!c->close_sent)
        chan_send_close(c);
    else {
        chan_detach(c);
        chan_maybe_free(c);
    }
    return 0;
}

/* ------------------------------------------------------------------- lifetime */

void
apf_channels_tunnel_gone(struct apf_tunnel *t)
{
    struct apf_chan_table *tab = table(t);
    for (uint32_t id = 0; tab && id < tab->cap; id++) {
        struct apf_channel *c = tab->slot[id];
        if (!c)
            continue;
        bool opening = c->state == CHAN_OPENING;
        if (c->state == CHAN_CONNECTING) {
            outbound_connect_cancel(c->connect); /* no callback into c after this */
            c->connect = NULL;
            chan_detach(c);
            chan_maybe_free(c);
            continue;
        }
        chan_detach(c);
        if (opening) {
            c->owner_released = true;
            c->open_cb(c->open_arg, NULL, -ECONNABORTED);
        } else {
            if (!c->owner_released)
                stream_fail_writes(&c->base, -ECONNABORTED);
            chan_end(c, c->close_rcvd ? MPS_EOF : -ECONNABORTED);
        }
        chan_maybe_free(c);
    }
    if (tab)
        free(tab->slot);
    free(tab);
    *apf_tunnel_chan_table(t) = NULL;
}

void
apf_channels_output_ready(struct apf_tunnel *t)
{
    /* Round robin, one packet per channel and turn, starting after the last that sent: the
     * room is shared, whatever the ids of the busy channels. */
    size_t quantum = (size_t)apf_tunnel_env(t)->cfg->max_packet_size;
    bool sent = true;
    while (sent && table(t) && table(t)->cap && apf_tunnel_has_room(t)) {
        sent = false;
        uint32_t start = table(t)->drain % table(t)->cap;
        for (uint32_t i = 0; table(t) && i < table(t)->cap && apf_tunnel_has_room(t); i++) {
            uint32_t id = (start + i) % table(t)->cap;
            struct apf_channel *c = table(t)->slot[id];
            if (c && c->txq && chan_pump(c, quantum)) {
                sent = true;
                if (table(t))
                    table(t)->drain = id + 1;
            }
        }
    }
}
