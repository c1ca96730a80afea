/* socks5.c - console module: a SOCKS5 proxy (RFC 1928/1929) into AMT devices' APF channels.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A console (KVM viewer, SOL/IDE-R tool, WS-Management client, curl) connects, negotiates
 * SOCKS5 and asks to CONNECT to DEVICE:PORT, where DEVICE is the FQDN or UUID the device
 * registered ("remote DNS") or the IP text it registered as its address-to-bind. The module
 * opens an APF channel to that device and port and hands both streams to the core's splice.
 * It never opens a network connection of its own: mpsd is not an open proxy.
 *
 * Per connection: GREETING -> [AUTH -> AUTH_WAIT] -> REQUEST -> CONNECTING -> spliced. Until
 * the reply, every byte received is kept in one buffer bounded by S5_INBUF_MAX; what follows
 * the request (a console that pipelines) is written into the channel before the splice. One
 * timer (HeadTimeout, or HandshakeTimeout as older configurations call it) bounds everything
 * from accept to the reply. The core owns the listener ([module socks5] Listen, AllowFrom, ...,
 * the older SocksListenIP/SocksListenPort), and the connection counts as pending until the
 * splice. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include "chan_status.h"
#include "socks5_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/queue.h> /* LIST_*: the connection list */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Pipelined bytes kept until the channel is open; a console sending more before it has its
 * reply is not speaking SOCKS5 and is closed. */
#define S5_PIPELINE_MAX (64 * 1024)
/* Unconsumed input never exceeds a pending request (plus the auth message before it, for a
 * console that pipelines everything) and the pipelined data. */
#define S5_INBUF_MAX (SOCKS5_AUTH_MAX + SOCKS5_REQUEST_MAX + S5_PIPELINE_MAX)
#define S5_INBUF_MIN 512

enum s5_state {
    S5_GREETING,   /* waiting for the method list */
    S5_AUTH,       /* waiting for the RFC 1929 username/password */
    S5_AUTH_WAIT,  /* auth_check pending */
    S5_REQUEST,    /* waiting for the request */
    S5_CONNECTING, /* chan_open pending */
};

struct s5_conn;

struct s5_inst { /* ctx->data */
    uint8_t *allowed; /* AllowedPorts (MPS_OPT_PORTS) */
    const struct mps_api *api;
    mps_inst *inst;
    long handshake_ms; /* the listener's HeadTimeout */
    LIST_HEAD(, s5_conn) conns; /* not yet spliced */
};

struct s5_conn {
    struct s5_inst *si;
    LIST_ENTRY(s5_conn) link; /* si->conns until spliced or freed */
    mps_stream *client; /* NULL once closed (the struct may wait for chan_open's callback) */
    mps_timer *timer;
    mps_auth_req *auth_req;
    enum s5_state state;
    bool opening;    /* chan_open callback outstanding */
    bool client_eof; /* console half-closed after its request */
    uint8_t *in;     /* received, not yet consumed */
    size_t in_len, in_cap;
    char peer[72];
    char user[256]; /* for log lines */
    char host[256];
    uint16_t port;
};

static void s5_advance(struct s5_conn *c);

/* ------------------------------------------------------------------------------ helpers */

/* Warnings and errors are what a console can provoke at will: rate-limited per address and
 * kind (the call site's format). */
static void __attribute__((format(printf, 4, 0)))
s5_vlog(const struct s5_conn *c, enum mps_log_level level, const void *kind, const char *fmt,
        va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const struct mps_api *api = c->si->api;
    if (level <= MPS_LOG_WARNING && c->client)
        api->log_peer(c->si->inst, c->client, level, kind, "console %s: %s", c->peer, msg);
    else
        api->log(c->si->inst, level, "console %s: %s", c->peer, msg);
}

static void __attribute__((format(printf, 3, 4)))
s5_log(const struct s5_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s5_vlog(c, level, fmt, fmt, ap);
    va_end(ap);
}

static bool
port_allowed(const struct s5_inst *si, uint16_t port)
{
    return MPS_PORT_IN_SET(si->allowed, port);
}

static void
s5_send(struct s5_conn *c, const uint8_t *buf, size_t len)
{
    struct mps_iov iov = {buf, len};
    /* A failed write means the console is gone; the close that follows or the next read
     * notices it, so the result is not needed here. */
    (void)c->si->api->write(c->client, &iov, 1, NULL, NULL);
}

/* ---------------------------------------------------------------------------- lifetime */

static void
conn_unlink(struct s5_conn *c)
{
    if (c->link.le_prev) {
        LIST_REMOVE(c, link);
        c->link.le_prev = NULL;
    }
}

static void
conn_free(struct s5_conn *c)
{
    const struct mps_api *api = c->si->api;
    if (c->timer)
        api->timer_stop(c->timer);
    if (c->auth_req)
        api->auth_cancel(c->auth_req);
    conn_unlink(c);
    if (c->in) {
        explicit_bzero(c->in, c->in_cap); /* may still hold a password */
        free(c->in);
    }
    free(c);
}

/* Close the console (queued replies are flushed first). The struct lives on while chan_open's
 * callback is outstanding: that callback closes the channel and frees it. */
static void
conn_close(struct s5_conn *c)
{
    const struct mps_api *api = c->si->api;
    if (c->timer) {
        api->timer_stop(c->timer);
        c->timer = NULL;
    }
    if (c->auth_req) {
        api->auth_cancel(c->auth_req);
        c->auth_req = NULL;
    }
    if (c->client) {
        api->close(c->client, NULL, NULL);
        c->client = NULL;
    }
    if (!c->opening)
        conn_free(c);
}

static void __attribute__((format(printf, 3, 4)))
s5_log_kind(const struct s5_conn *c, const void *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s5_vlog(c, MPS_LOG_WARNING, kind, fmt, ap);
    va_end(ap);
}

/* Answer the request with an error reply, log why, close. */
static void __attribute__((format(printf, 3, 4)))
conn_refuse(struct s5_conn *c, uint8_t rep, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    s5_log_kind(c, fmt, "CONNECT %s:%u refused (reply 0x%02x): %s", c->host, c->port, rep, why);
    uint8_t reply[SOCKS5_REPLY_LEN];
    s5_send(c, reply, socks5_encode_reply(reply, rep));
    conn_close(c);
}

/* ------------------------------------------------------------------------------ buffer */

static bool
inbuf_append(struct s5_conn *c, const void *data, size_t len)
{
    if (len > S5_INBUF_MAX - c->in_len)
        return false;
    size_t need = c->in_len + len;
    if (need > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : S5_INBUF_MIN;
        while (cap < need)
            cap *= 2;
        if (cap > S5_INBUF_MAX)
            cap = S5_INBUF_MAX;
        uint8_t *p = malloc(cap);
        if (!p)
            return false;
        /* Not realloc: the old block may hold a password, so it is wiped before release. */
        if (c->in) {
            memcpy(p, c->in, c->in_len);
            explicit_bzero(c->in, c->in_cap);
            free(c->in);
        }
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len = need;
    return true;
}

static void
inbuf_consume(struct s5_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    explicit_bzero(c->in + c->in_len - n, n);
    c->in_len -= n;
}

/* --------------------------------------------------------------------------- negotiation */

/* "No authentication" only when the console offers it and [Socks_Authenticate] does not ask
 * for credentials; otherwise username/password if offered. */
static uint8_t
choose_method(struct s5_conn *c, const struct socks5_greeting *g)
{
    if (socks5_greeting_offers(g, SOCKS5_METHOD_NONE) && !c->si->api->auth_required(c->si->inst))
        return SOCKS5_METHOD_NONE;
    if (socks5_greeting_offers(g, SOCKS5_METHOD_USERPASS))
        return SOCKS5_METHOD_USERPASS;
    return SOCKS5_METHOD_UNACCEPTABLE;
}

/* The console realm decided. Returns true when the negotiation goes on (c is alive). */
static bool
auth_result(struct s5_conn *c, int result, const char *msg)
{
    uint8_t st[2];
    if (result == MPS_AUTH_OK) {
        s5_send(c, st, socks5_encode_auth_status(st, SOCKS5_AUTH_SUCCESS));
        s5_log(c, MPS_LOG_DEBUG, "authenticated as \"%s\"", c->user);
        c->state = S5_REQUEST;
        return true;
    }
    if (result == MPS_AUTH_DENY)
        s5_log(c, MPS_LOG_WARNING, "user \"%s\" denied: %s", c->user, msg ? msg : "no reason");
    else
        s5_log(c, MPS_LOG_ERROR, "user \"%s\": authentication failed: %s", c->user,
               msg ? msg : "no reason");
    s5_send(c, st, socks5_encode_auth_status(st, SOCKS5_AUTH_FAILURE));
    conn_close(c);
    return false;
}

static void
s5_auth_done(void *arg, int result, const char *msg)
{
    struct s5_conn *c = arg;
    c->auth_req = NULL;
    if (auth_result(c, result, msg))
        s5_advance(c); /* the request may have arrived meanwhile */
}

/* Returns true when the negotiation goes on synchronously (c is alive, state REQUEST). */
static bool
start_auth(struct s5_conn *c, const struct socks5_auth *a)
{
    /* for log lines, which the core strips of control bytes */
    snprintf(c->user, sizeof(c->user), "%s", a->user);
    struct mps_cred cred = {
        .service = "socks5",
        .user = a->user,
        .password = a->password,
        .peer_addr = c->peer,
    };
    mps_auth_req *req = NULL;
    int r = c->si->api->auth_check(c->si->inst, &cred, s5_auth_done, c, &req);
    if (r == MPS_AUTH_PENDING) {
        c->auth_req = req;
        c->state = S5_AUTH_WAIT;
        return false;
    }
    return auth_result(c, r, NULL);
}

static void
s5_opened(void *arg, mps_stream *chan, int status)
{
    struct s5_conn *c = arg;
    const struct mps_api *api = c->si->api;

    c->opening = false;
    if (!c->client) { /* the console left, timed out or mpsd is stopping */
        if (chan)
            api->close(chan, NULL, NULL);
        conn_free(c);
        return;
    }
    if (!chan) {
        conn_refuse(c,
                    status == -ECONNREFUSED         ? SOCKS5_REP_CONN_REFUSED
                    : chan_open_unreachable(status) ? SOCKS5_REP_HOST_UNREACHABLE
                                                    : SOCKS5_REP_GENERAL_FAILURE,
                    "%s", chan_open_failure(status));
        return;
    }
    uint8_t reply[SOCKS5_REPLY_LEN];
    s5_send(c, reply, socks5_encode_reply(reply, SOCKS5_REP_SUCCEEDED));
    if (c->in_len) { /* pipelined: it goes first, before anything the splice reads */
        struct mps_iov iov = {c->in, c->in_len};
        if (api->write(chan, &iov, 1, NULL, NULL) < 0) {
            s5_log(c, MPS_LOG_WARNING, "CONNECT %s:%u: the channel failed at once", c->host,
                   c->port);
            api->close(chan, NULL, NULL);
            conn_close(c);
            return;
        }
    }
    if (c->client_eof) /* the console half-closed after its request: pass that on */
        api->shutdown(chan);
    s5_log(c, MPS_LOG_INFO, "CONNECT %s:%u established%s%s%s (%zu bytes pipelined)", c->host,
           c->port, c->user[0] ? " as \"" : "", c->user, c->user[0] ? "\"" : "", c->in_len);
    api->stream_established(c->client);
    mps_stream *client = c->client;
    mps_inst *inst = c->si->inst;
    c->client = NULL;
    conn_free(c);
    if (api->splice(client, chan) < 0) {
        api->log(inst, MPS_LOG_ERROR, "cannot join a console to its channel");
        api->close(client, NULL, NULL);
        api->close(chan, NULL, NULL);
    }
}

static void
s5_request(struct s5_conn *c, const struct socks5_request *r)
{
    struct s5_inst *si = c->si;

    c->port = r->port;
    if (r->atyp != SOCKS5_ATYP_DOMAIN || socks5_host_is_sane(r->host, r->host_len))
        snprintf(c->host, sizeof(c->host), "%s", r->host);
    else
        snprintf(c->host, sizeof(c->host), "(invalid name)");
    if (r->cmd != SOCKS5_CMD_CONNECT) {
        conn_refuse(c, SOCKS5_REP_CMD_UNSUPPORTED, "command 0x%02x is not supported (CONNECT only)",
                    r->cmd);
        return;
    }
    /* Policy first: a refused port must not reveal whether the device exists. */
    if (!port_allowed(si, r->port)) {
        conn_refuse(c, SOCKS5_REP_NOT_ALLOWED, "port %u is not in AllowedPorts", r->port);
        return;
    }
    if (r->atyp == SOCKS5_ATYP_DOMAIN && !socks5_host_is_sane(r->host, r->host_len)) {
        conn_refuse(c, SOCKS5_REP_HOST_UNREACHABLE, "the name is not a device name");
        return;
    }
    s5_log(c, MPS_LOG_DEBUG, "CONNECT %s:%u requested", c->host, c->port);
    struct mps_chan_req req = {
        .device = c->host,
        .port = c->port,
        .console = c->client, /* AMT is told the console's address and port */
    };
    c->state = S5_CONNECTING;
    c->opening = true;
    int rc = si->api->chan_open(si->inst, &req, s5_opened, c);
    if (rc >= 0)
        return;
    c->opening = false;
    switch (rc) {
    case -ENOENT:
        conn_refuse(c, SOCKS5_REP_HOST_UNREACHABLE, "device not connected");
        break;
    case -ECONNREFUSED:
        conn_refuse(c, SOCKS5_REP_CONN_REFUSED, "the device does not forward this port");
        break;
    case -EMFILE:
        conn_refuse(c, SOCKS5_REP_GENERAL_FAILURE, "the device's channel limit is reached");
        break;
    default:
        conn_refuse(c, SOCKS5_REP_GENERAL_FAILURE, "cannot open a channel: %s", strerror(-rc));
        break;
    }
}

/* The buffer holds no complete message. A console that already half-closed cannot send the
 * rest: it is gone. */
static void
s5_need_more(struct s5_conn *c)
{
    if (!c->client_eof)
        return;
    s5_log(c, MPS_LOG_DEBUG, "left during the SOCKS negotiation (end of stream)");
    conn_close(c);
}

/* Parse and act on every complete message buffered. c may be freed on return. */
static void
s5_advance(struct s5_conn *c)
{
    for (;;) {
        size_t used = 0;
        int rc;
        uint8_t out[2];

        switch (c->state) {
        case S5_GREETING: {
            struct socks5_greeting g;
            rc = socks5_parse_greeting(c->in, c->in_len, &g, &used);
            if (rc == SOCKS5_NEED_MORE) {
                s5_need_more(c);
                return;
            }
            if (rc != SOCKS5_OK) {
                s5_log(c, MPS_LOG_WARNING, "not a SOCKS5 client: closed");
                conn_close(c);
                return;
            }
            inbuf_consume(c, used);
            uint8_t m = choose_method(c, &g);
            s5_send(c, out, socks5_encode_method(out, m));
            if (m == SOCKS5_METHOD_UNACCEPTABLE) {
                s5_log(c, MPS_LOG_WARNING, "offers no acceptable authentication method "
                       "(username/password required): closed");
                conn_close(c);
                return;
            }
            c->state = m == SOCKS5_METHOD_NONE ? S5_REQUEST : S5_AUTH;
            break;
        }
        case S5_AUTH: {
            struct socks5_auth a;
            rc = socks5_parse_auth(c->in, c->in_len, &a, &used);
            if (rc == SOCKS5_NEED_MORE) {
                s5_need_more(c);
                return;
            }
            if (rc != SOCKS5_OK) {
                s5_log(c, MPS_LOG_WARNING, "malformed username/password message: closed");
                s5_send(c, out, socks5_encode_auth_status(out, SOCKS5_AUTH_FAILURE));
                conn_close(c);
                return;
            }
            inbuf_consume(c, used);
            bool go_on = start_auth(c, &a);
            explicit_bzero(&a, sizeof(a));
            if (!go_on)
                return;
            break;
        }
        case S5_REQUEST: {
            struct socks5_request r;
            rc = socks5_parse_request(c->in, c->in_len, &r, &used);
            if (rc == SOCKS5_NEED_MORE) {
                s5_need_more(c);
                return;
            }
            if (rc == SOCKS5_BAD_ATYP) {
                snprintf(c->host, sizeof(c->host), "(address type 0x%02x)",
                         c->in_len > 3 ? c->in[3] : 0);
                conn_refuse(c, SOCKS5_REP_ATYP_UNSUPPORTED, "unknown address type");
                return;
            }
            if (rc != SOCKS5_OK) {
                s5_log(c, MPS_LOG_WARNING, "malformed SOCKS5 request: closed");
                conn_close(c);
                return;
            }
            inbuf_consume(c, used);
            s5_request(c, &r);
            return;
        }
        case S5_AUTH_WAIT:
        case S5_CONNECTING:
            return; /* input is kept until the answer */
        }
    }
}

/* ---------------------------------------------------------------------------- events */

static void
s5_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct s5_conn *c = arg;
    (void)s;
    if (status < 0) {
        if (status == MPS_EOF && (c->state == S5_CONNECTING || c->state == S5_AUTH_WAIT)) {
            /* A console that sent all and waits for the answer: what it pipelined behind
             * the pending step is still buffered. */
            c->client_eof = true;
            return;
        }
        s5_log(c, MPS_LOG_DEBUG, "left during the SOCKS negotiation (%s)",
               status == MPS_EOF ? "end of stream" : strerror(-status));
        conn_close(c);
        return;
    }
    if (!inbuf_append(c, data->base, data->len)) {
        s5_log(c, MPS_LOG_WARNING, "sent more than %d bytes before its reply: closed",
               S5_PIPELINE_MAX);
        conn_close(c);
        return;
    }
    s5_advance(c);
}

static void
s5_timeout(void *arg)
{
    struct s5_conn *c = arg;
    c->si->api->timer_stop(c->timer);
    c->timer = NULL;
    if (c->state == S5_CONNECTING) {
        conn_refuse(c, SOCKS5_REP_TTL_EXPIRED, "the device did not answer within %ld ms",
                    c->si->handshake_ms);
        return;
    }
    s5_log(c, MPS_LOG_WARNING, "SOCKS negotiation not completed within %ld ms: closed",
           c->si->handshake_ms);
    conn_close(c);
}

/* A console: accepted on the instance's listener, or served by a layer (TLS). */
static void
s5_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct s5_inst *si = ctx->data;
    const struct mps_api *api = si->api;

    struct s5_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(si->inst, MPS_LOG_ERROR, "out of memory: console %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->si = si;
    c->client = client;
    c->state = S5_GREETING;
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    LIST_INSERT_HEAD(&si->conns, c, link);
    c->timer = api->timer_start(si->inst, (uint64_t)si->handshake_ms, s5_timeout, c);
    if (!c->timer) {
        s5_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        conn_close(c);
        return;
    }
    int rc = api->read_start(client, s5_on_read, c);
    if (rc < 0) {
        s5_log(c, MPS_LOG_WARNING, "cannot read: %s", strerror(-rc));
        conn_close(c);
    }
}

/* ----------------------------------------------------------------------------- hooks */

static int
s5_init(const struct mps_ctx *ctx)
{
    struct s5_inst *si = ctx->data;
    si->api = ctx->api;
    si->inst = ctx->inst;
    si->handshake_ms = ctx->api->listen_conf(ctx->inst)->head_timeout_ms;
    return 0;
}

static void
s5_stop(const struct mps_ctx *ctx)
{
    struct s5_inst *si = ctx->data;
    /* Connections waiting for a channel stay listed until its callback, which the core's
     * shutdown delivers; the others go now. Pending auth checks are cancelled before the
     * core frees the realm. */
    struct s5_conn *c = LIST_FIRST(&si->conns), *next;
    for (; c; c = next) {
        next = LIST_NEXT(c, link);
        if (c->client)
            conn_close(c);
    }
}

static const struct mps_option s5_options[] = {
    {.name = "AllowedPorts", .type = MPS_OPT_PORTS, .offset = offsetof(struct s5_inst, allowed),
     .dflt = "16992 16993 16994 16995 623 664 5900",
     .help = "device ports consoles may CONNECT to (space- or comma-separated)"},
    MPS_OPTIONS_END,
};

static const char *const s5_aliases[] = {
    "SocksListenIP", "ListenIP", "SocksListenPort", "ListenPort",
    "HandshakeTimeout", "HeadTimeout", NULL,
};

static const struct mps_listen_role s5_listen = {
    .default_listen = "127.0.0.1:8090",
    .aliases = s5_aliases,
    .head_timeout_ms = 10000, /* from accept to the reply: negotiation and channel open */
    .max_connections = 10000,
    .max_per_source = 2000,
    .max_startups = "1000:30:3000",
};

static const struct mps_module s5_module = {
    MPS_MODULE_HEADER,
    .name = "socks5",
    .version = PACKAGE_VERSION,
    .description = "SOCKS5 console proxy (RFC 1928/1929) into AMT devices' APF channels",
    .inst_size = sizeof(struct s5_inst),
    .options = s5_options,
    .init = s5_init,
    .stop = s5_stop,
    .accept = s5_accept,
    .listen = &s5_listen,
};

MPS_MODULE_EXPORT(socks5, s5_module)
