/* link.c - one inter-node link: dialling or accepting it, the handshake that proves both ends
 * hold the cluster's key, frames in and out, keepalive, and the table of its channels.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A link is freed only once nothing can call into it: its stream's close callback ran (or
 * its connect answered) and its channels were detached. Until then a dead link (LS_DEAD)
 * ignores everything. */
#include "cluster_link.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void link_timer_fired(void *arg);
static void link_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

static const char *
my_node(struct cl_inst *ci)
{
    return ci->dir ? ci->dir->node_id(ci->dir_obj) : "";
}

static void
link_free(struct link *l)
{
    if (l->timer)
        l->ci->api->timer_stop(l->timer);
    if (l->flush_timer)
        l->ci->api->timer_stop(l->flush_timer);
    free(l->tx);
    link_reader_free(&l->rd);
    free(l->chans);
    free(l);
}

static void
link_maybe_free(struct link *l)
{
    if (l->state == LS_DEAD && !l->connect_pending && !l->s)
        link_free(l);
}

static void
link_stream_closed(void *arg, int status)
{
    struct link *l = arg;
    (void)status;
    l->s = NULL;
    link_maybe_free(l);
}

void
link_fail(struct link *l, int status, const char *fmt, ...)
{
    struct cl_inst *ci = l->ci;
    if (l->state == LS_DEAD)
        return;
    bool was_up = l->state == LS_UP;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (!ci->stopping || !was_up) {
        ci->ctr.link_failures++;
        if (!l->dialled && !was_up) /* anyone can connect: rate-limited per source */
            ci->api->log_peer(ci->mi, l->s, MPS_LOG_WARNING, "cluster link: refused",
                              "cluster link: link from %s (node %s) refused: %s",
                              ci->api->peer(l->s), l->node[0] ? l->node : "?", why);
        else
            CL_LOG(ci, was_up ? MPS_LOG_WARNING : MPS_LOG_ERROR, "link %s node %s%s%s: %s",
                   l->dialled ? "to" : "from", l->node, l->dialled ? " at " : "",
                   l->dialled ? l->addr : "", why);
    }
    if (was_up && ci->ctr.links_up)
        ci->ctr.links_up--;
    l->state = LS_DEAD;
    LIST_REMOVE(l, entry);
    if (l->timer) {
        ci->api->timer_stop(l->timer);
        l->timer = NULL;
    }
    if (l->flush_timer) {
        ci->api->timer_stop(l->flush_timer);
        l->flush_timer = NULL;
    }
    /* Every channel ends now; each is freed by its own owner's path. */
    for (uint32_t i = 0; i < l->cap; i++) {
        struct lchan *c = l->chans[i];
        if (c) {
            l->chans[i] = NULL;
            l->nchans--;
            chan_link_gone(c, status);
        }
    }
    if (l->s && !l->closing) {
        l->closing = true;
        ci->api->close(l->s, link_stream_closed, l);
    }
    link_maybe_free(l);
}

void
link_close_all(struct cl_inst *ci)
{
    struct link *l;
    while ((l = LIST_FIRST(&ci->links)))
        link_fail(l, -ECONNABORTED, "mpsd is stopping");
}

/* ------------------------------------------------------------------------ frames out */

/* Frames a link carries are written when the loop has handled the events of its turn, all
 * at once: a link multiplexes every relayed console of two nodes, and the replies of several
 * devices (or the requests of several consoles) usually become ready in the same turn. One
 * write each would cost a syscall, a segment and a wakeup of the other node per frame
 * (tests/bench/REPORT-RELAY.md). Past LINK_TX_FLUSH bytes they go at once: bulk transfers
 * gain nothing from waiting, and the buffer stays small. */
#define LINK_TX_FLUSH (64 * 1024)
#define LINK_TX_KEEP (256 * 1024) /* a buffer grown past this is freed once sent */

static void
link_flush(struct link *l)
{
    if (!l->tx_len || l->state == LS_DEAD || !l->s)
        return;
    struct mps_iov iov = {l->tx, l->tx_len};
    l->tx_len = 0;
    int rc = l->ci->api->write(l->s, &iov, 1, NULL, NULL); /* copies what cannot go at once */
    l->ci->ctr.writes++;
    if (l->tx_cap > LINK_TX_KEEP) {
        free(l->tx);
        l->tx = NULL;
        l->tx_cap = 0;
    }
    if (rc < 0)
        link_fail(l, -ECONNABORTED, "the connection failed");
}

static void
link_flush_due(void *arg)
{
    struct link *l = arg;
    l->flush_armed = false;
    link_flush(l);
}

void
link_send(struct link *l, uint8_t type, uint32_t chan, const void *p, size_t len)
{
    if (l->state == LS_DEAD || !l->s)
        return;
    size_t need = l->tx_len + LINK_HDR_LEN + len;
    if (need > l->tx_cap) {
        size_t cap = l->tx_cap ? l->tx_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *tx = realloc(l->tx, cap);
        if (!tx)
            return link_fail(l, -ENOMEM, "out of memory for frames");
        l->tx = tx;
        l->tx_cap = cap;
    }
    link_hdr_encode(l->tx + l->tx_len, type, chan, (uint32_t)len);
    if (len)
        memcpy(l->tx + l->tx_len + LINK_HDR_LEN, p, len);
    l->tx_len = need;
    l->ci->ctr.frames_out++;
    if (l->tx_len >= LINK_TX_FLUSH)
        return link_flush(l);
    if (!l->flush_armed) {
        l->flush_armed = true;
        l->ci->api->timer_restart(l->flush_timer, 0);
    }
}

void
link_send32(struct link *l, uint8_t type, uint32_t chan, uint32_t v)
{
    uint8_t p[4];
    link_put32(p, v);
    link_send(l, type, chan, p, sizeof(p));
}

/* ------------------------------------------------------------------- channel table */

int
link_chan_add(struct link *l, struct lchan *c, uint32_t id)
{
    if (l->nchans >= CL_CHANS_MAX)
        return -EMFILE;
    if (!id) { /* ours: the next free id from where the last one was taken */
        for (uint32_t i = 0; i < CL_CHANS_MAX; i++) {
            uint32_t cand = (l->next_id + i) % CL_CHANS_MAX + 1;
            if (cand > l->cap || !l->chans[cand - 1]) {
                id = cand;
                break;
            }
        }
        l->next_id = id % CL_CHANS_MAX;
    }
    if (!id || id > CL_CHANS_MAX)
        return -EINVAL;
    if (id > l->cap) {
        uint32_t cap = l->cap ? l->cap : 16;
        while (cap < id)
            cap *= 2;
        if (cap > CL_CHANS_MAX)
            cap = CL_CHANS_MAX;
        struct lchan **v = realloc(l->chans, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        memset(v + l->cap, 0, (cap - l->cap) * sizeof(*v));
        l->chans = v;
        l->cap = cap;
    }
    if (l->chans[id - 1])
        return -EEXIST;
    l->chans[id - 1] = c;
    l->nchans++;
    c->id = id;
    c->l = l;
    c->counted = true;
    l->ci->ctr.channels++;
    return 0;
}

void
link_chan_remove(struct link *l, struct lchan *c)
{
    if (c->id && c->id <= l->cap && l->chans[c->id - 1] == c) {
        l->chans[c->id - 1] = NULL;
        l->nchans--;
    }
    c->l = NULL;
}

/* ------------------------------------------------------------------------- handshake */

static void
link_up(struct link *l)
{
    struct cl_inst *ci = l->ci;
    l->state = LS_UP;
    ci->ctr.links_up++;
    if (l->dialled)
        ci->ctr.links_dialled++;
    else
        ci->ctr.links_accepted++;
    CL_LOG(ci, MPS_LOG_INFO, "link %s node %s (%s) is up", l->dialled ? "to" : "from", l->node,
           l->dialled ? l->addr : ci->api->peer(l->s));
    if (!l->dialled)
        ci->api->stream_established(l->s);
    l->missed = 0;
    l->rx_seen = true;
    ci->api->timer_restart(l->timer, (uint64_t)ci->keepalive_ms);
    if (l->dialled) /* the channels that waited for it */
        for (uint32_t i = 0; i < l->cap && l->state == LS_UP; i++)
            if (l->chans[i])
                chan_link_up(l->chans[i]);
}

static void
send_hello(struct link *l)
{
    const char *node = my_node(l->ci);
    uint8_t p[LINK_NONCE_LEN + LINK_NODE_MAX];
    size_t nl = strlen(node);
    memcpy(p, l->my_nonce, LINK_NONCE_LEN);
    memcpy(p + LINK_NONCE_LEN, node, nl);
    link_send(l, LINK_HELLO, 0, p, LINK_NONCE_LEN + nl);
}

/* Dialled: the acceptor introduced itself; prove we hold the key. */
static void
on_hello(struct link *l, const struct link_frame *f)
{
    struct cl_inst *ci = l->ci;
    const uint8_t *nonce;
    char node[LINK_NODE_MAX + 1];
    if (link_hello_decode(f->payload, f->len, &nonce, node, sizeof(node)) < 0)
        return link_fail(l, -EPROTO, "malformed HELLO");
    if (strcmp(node, l->node)) {
        ci->ctr.auth_failures++;
        return link_fail(l, -EHOSTUNREACH, "the address answers as node %s", node);
    }
    memcpy(l->peer_nonce, nonce, LINK_NONCE_LEN);
    const char *me = my_node(ci);
    uint8_t p[LINK_NONCE_LEN + LINK_MAC_LEN + LINK_NODE_MAX];
    size_t ml = strlen(me);
    memcpy(p, l->my_nonce, LINK_NONCE_LEN);
    if (link_mac(ci->key, ci->key_len, "client", l->peer_nonce, l->my_nonce, me,
                 p + LINK_NONCE_LEN) < 0)
        return link_fail(l, -EPROTO, "cannot compute the handshake MAC");
    memcpy(p + LINK_NONCE_LEN + LINK_MAC_LEN, me, ml);
    link_send(l, LINK_AUTH, 0, p, LINK_NONCE_LEN + LINK_MAC_LEN + ml);
}

/* Accepted: the dialler's proof; ours back. */
static void
on_auth(struct link *l, const struct link_frame *f)
{
    struct cl_inst *ci = l->ci;
    const uint8_t *nonce, *mac;
    char node[LINK_NODE_MAX + 1];
    uint8_t want[LINK_MAC_LEN];
    if (link_auth_decode(f->payload, f->len, &nonce, &mac, node, sizeof(node)) < 0)
        return link_fail(l, -EPROTO, "malformed AUTH");
    snprintf(l->node, sizeof(l->node), "%s", node);
    if (link_mac(ci->key, ci->key_len, "client", l->my_nonce, nonce, node, want) < 0 ||
        !link_mac_equal(want, mac)) {
        ci->ctr.auth_failures++;
        return link_fail(l, -EACCES, "it does not hold the cluster key");
    }
    memcpy(l->peer_nonce, nonce, LINK_NONCE_LEN);
    if (link_mac(ci->key, ci->key_len, "server", l->peer_nonce, l->my_nonce, my_node(ci), want) < 0)
        return link_fail(l, -EPROTO, "cannot compute the handshake MAC");
    link_send(l, LINK_AUTH_OK, 0, want, sizeof(want));
    link_up(l);
}

/* Dialled: the acceptor's proof. */
static void
on_auth_ok(struct link *l, const struct link_frame *f)
{
    struct cl_inst *ci = l->ci;
    uint8_t want[LINK_MAC_LEN];
    if (f->len != LINK_MAC_LEN ||
        link_mac(ci->key, ci->key_len, "server", l->my_nonce, l->peer_nonce, l->node, want) < 0 ||
        !link_mac_equal(want, f->payload)) {
        ci->ctr.auth_failures++;
        return link_fail(l, -EHOSTUNREACH, "the node does not hold the cluster key");
    }
    link_up(l);
}

/* ------------------------------------------------------------------------- frames in */

static void
dispatch(struct link *l, const struct link_frame *f)
{
    l->rx_seen = true;
    if (l->state == LS_HANDSHAKE) {
        if (l->dialled && f->type == LINK_HELLO && !l->hello_seen) {
            l->hello_seen = true;
            on_hello(l, f);
        } else if (l->dialled && f->type == LINK_AUTH_OK && l->hello_seen)
            on_auth_ok(l, f);
        else if (!l->dialled && f->type == LINK_AUTH)
            on_auth(l, f);
        else
            link_fail(l, -EPROTO, "frame %u during the handshake", f->type);
        return;
    }
    switch (f->type) {
    case LINK_PING:
        link_send(l, LINK_PONG, 0, f->payload, f->len > 16 ? 16 : f->len);
        break;
    case LINK_PONG:
        break;
    case LINK_OPEN:
    case LINK_OPEN_OK:
    case LINK_OPEN_FAIL:
    case LINK_DATA:
    case LINK_CREDIT:
    case LINK_EOF:
    case LINK_CLOSE:
        chan_frame(l, f);
        break;
    default:
        link_fail(l, -EPROTO, "unexpected frame %u", f->type);
    }
}

static void
link_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct link *l = arg;
    (void)s;
    if (l->state == LS_DEAD)
        return;
    if (status < 0)
        return link_fail(l, status == MPS_EOF ? -ECONNRESET : status, "%s",
                         l->state == LS_HANDSHAKE
                             ? (status == MPS_EOF ? "the other end closed the link during the "
                                                    "handshake (is SharedKeyFile the same on "
                                                    "both nodes?)"
                                                  : "the connection failed during the "
                                                    "handshake (with Tls: did the other node "
                                                    "refuse this node's certificate?)")
                         : status == MPS_EOF ? "the other end closed the link"
                                             : "the connection failed");
    const uint8_t *p = data->base;
    size_t len = data->len, off = 0;
    while (off < len && l->state != LS_DEAD) {
        struct link_frame f;
        if (!l->rd.have) { /* a whole frame in the read buffer: no copy */
            long n = link_frame_parse(p + off, len - off, &f);
            if (n < 0)
                return link_fail(l, -EPROTO, "malformed frame");
            if (n > 0) {
                off += (size_t)n;
                dispatch(l, &f);
                continue;
            }
        }
        off += link_reader_feed(&l->rd, p + off, len - off);
        int r = link_reader_next(&l->rd, &f);
        if (r < 0)
            return link_fail(l, -EPROTO, "malformed frame");
        if (r > 0)
            dispatch(l, &f);
    }
}

/* ----------------------------------------------------------- timers: resolve, keepalive */

static void
link_start(struct link *l, mps_stream *s)
{
    struct cl_inst *ci = l->ci;
    l->s = s;
    l->state = LS_HANDSHAKE;
    if (RAND_bytes(l->my_nonce, LINK_NONCE_LEN) != 1)
        return link_fail(l, -EIO, "no random bytes for the handshake");
    if (ci->api->read_start(s, link_read, l) < 0)
        return link_fail(l, -ECONNABORTED, "the connection failed");
    ci->api->timer_restart(l->timer, (uint64_t)ci->connect_timeout_ms);
    if (!l->dialled)
        send_hello(l);
}

/* Tls: the TLS handshake ended; the link's own handshake runs inside. */
static void
link_tls_done(void *arg, mps_stream *s, int status, const char *reason)
{
    struct link *l = arg;
    l->connect_pending = false;
    if (l->state == LS_DEAD) {
        if (s)
            l->ci->api->close(s, NULL, NULL);
        return link_maybe_free(l);
    }
    if (!s)
        return link_fail(l, status == -ECANCELED ? -ECONNABORTED : -EHOSTUNREACH,
                         "TLS handshake failed: %s", reason ? reason : strerror(-status));
    link_start(l, s);
}

static void
link_connected(void *arg, mps_stream *s, int status)
{
    struct link *l = arg;
    struct cl_inst *ci = l->ci;
    l->connect_pending = false;
    if (l->state == LS_DEAD) {
        if (s)
            ci->api->close(s, NULL, NULL);
        return link_maybe_free(l);
    }
    if (!s)
        return link_fail(l, -EHOSTUNREACH, "cannot connect: %s", strerror(-status));
    if (!ci->tls)
        return link_start(l, s);
    const struct tls_client_iface *t = cl_tls_client(ci);
    int rc =
        t ? t->open(ci->tls_obj, s, (uint64_t)ci->connect_timeout_ms, link_tls_done, l) : -ENOENT;
    if (!t)
        ci->api->close(s, NULL, NULL);
    if (rc < 0)
        return link_fail(l, -EHOSTUNREACH, "cannot start TLS: %s",
                         rc == -ENOENT ? "no [module tls] with Serve = cluster_link"
                                       : strerror(-rc));
    l->connect_pending = true;
}

static void
link_connect(struct link *l)
{
    struct cl_inst *ci = l->ci;
    char host[CLUSTER_LINK_MAX + 1];
    const char *colon = strrchr(l->addr, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == l->addr || !port || port > 65535 || *end)
        return link_fail(l, -EHOSTUNREACH, "the published address is not host:port");
    size_t hl = (size_t)(colon - l->addr);
    const char *h = l->addr;
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') /* [v6]:port */
        h++, hl -= 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    l->state = LS_CONNECTING;
    l->connect_pending = true;
    int rc = ci->api->connect(ci->mi, host, (uint16_t)port, (uint64_t)ci->connect_timeout_ms,
                              link_connected, l);
    if (rc < 0) {
        l->connect_pending = false;
        link_fail(l, -EHOSTUNREACH, "cannot connect: %s", strerror(-rc));
    }
}

/* Resolving: ask the directory for the address; else the handshake deadline or keepalive. */
static void
link_timer_fired(void *arg)
{
    struct link *l = arg;
    struct cl_inst *ci = l->ci;
    switch (l->state) {
    case LS_RESOLVING: {
        int rc =
            ci->dir ? ci->dir->node_link(ci->dir_obj, l->node, l->addr, sizeof(l->addr)) : -ENOENT;
        if (rc == 0)
            return link_connect(l);
        l->addr[0] = '\0';
        l->waited_ms += CL_RESOLVE_RETRY_MS;
        if (rc == -EAGAIN && l->waited_ms < ci->connect_timeout_ms) {
            ci->api->timer_restart(l->timer, CL_RESOLVE_RETRY_MS);
            return;
        }
        return link_fail(l, -EHOSTUNREACH, "%s",
                         rc == -EAGAIN ? "the node published no link address (no cluster_link "
                                         "there, or its lease was not read yet)"
                                       : "the node is not known (it lost its lease)");
    }
    case LS_HANDSHAKE:
        return link_fail(l, -EHOSTUNREACH, "no handshake within %ld ms", ci->connect_timeout_ms);
    case LS_UP:
        if (!l->rx_seen && ++l->missed >= CL_KEEPALIVE_MISSES)
            return link_fail(l, -ETIMEDOUT, "nothing heard for %ld ms",
                             ci->keepalive_ms * CL_KEEPALIVE_MISSES);
        if (l->rx_seen)
            l->missed = 0;
        l->rx_seen = false;
        link_send(l, LINK_PING, 0, NULL, 0);
        if (l->state == LS_UP)
            ci->api->timer_restart(l->timer, (uint64_t)ci->keepalive_ms);
        return;
    default:
        return;
    }
}

static struct link *
link_new(struct cl_inst *ci, bool dialled)
{
    struct link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->ci = ci;
    l->dialled = dialled;
    if (link_reader_init(&l->rd) < 0 ||
        !(l->timer = ci->api->timer_start(ci->mi, 3600000, link_timer_fired, l)) ||
        !(l->flush_timer = ci->api->timer_start(ci->mi, 3600000, link_flush_due, l))) {
        if (l->timer)
            ci->api->timer_stop(l->timer);
        link_reader_free(&l->rd);
        free(l);
        return NULL;
    }
    LIST_INSERT_HEAD(&ci->links, l, entry);
    return l;
}

struct link *
link_dial(struct cl_inst *ci, const char *node)
{
    struct link *l;
    LIST_FOREACH(l, &ci->links, entry)
    if (l->dialled && strcmp(l->node, node) == 0)
        return l;
    if (!(l = link_new(ci, true)))
        return NULL;
    snprintf(l->node, sizeof(l->node), "%s", node);
    l->state = LS_RESOLVING;
    ci->api->timer_restart(l->timer, 0); /* asks the directory from the loop, not inline */
    return l;
}

void
link_accepted(struct cl_inst *ci, mps_stream *s)
{
    struct link *l = ci->stopping ? NULL : link_new(ci, false);
    if (!l) {
        ci->api->close(s, NULL, NULL);
        return;
    }
    snprintf(l->addr, sizeof(l->addr), "%s", ci->api->peer(s));
    link_start(l, s);
}
