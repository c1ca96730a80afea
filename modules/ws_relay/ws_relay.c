/* ws_relay.c - console module: a WebSocket relay (RFC 6455) from browser consoles into AMT
 * devices' APF channels.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A browser console (MeshCommander, Intel's DMT web UI, a page of one's own) opens
 * ws[s]://MPS:7795/relay/DEVICE/PORT (or MeshCommander's webrelay.ashx?host=DEVICE&port=PORT),
 * and the WebSocket becomes a byte stream to that port of the device: binary frames in, binary
 * frames out. As in socks5 and http_proxy, the only place a request can lead is chan_open to a
 * registered device on a port in AllowedPorts: this module opens no network connection.
 *
 * This file: the instance, and each connection until its upgrade: the request head (bounded by
 * WS_HEAD_MAX, HeadTimeout from the accept to the 101), the policy and the channel; between
 * them ws_auth.c (AllowOrigin, then Basic or tokens); then ws_pump.c. One timer per connection
 * serves the head deadline and, once relaying, IdleTimeout (re-armed lazily from last_active). TLS
 * is the tls module's: `[module tls] Serve = ws_relay` hands its plaintext streams to the accept
 * hook (wss://). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "ws_relay.h"

#include "chan_status.h"
#include "http_basic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define WR_HEAD_BUF_MIN 1024

/* ------------------------------------------------------------------------------ helpers */

uint64_t
wr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Warnings and errors are what a console can provoke at will: rate-limited per address and
 * kind (the call site's format). */
static void __attribute__((format(printf, 4, 0)))
wr_vlog(const struct wr_conn *c, enum mps_log_level level, const void *kind, const char *fmt,
        va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const struct mps_api *api = c->wi->api;
    if (level <= MPS_LOG_WARNING && c->client)
        api->log_peer(c->wi->inst, c->client, level, kind, "console %s: %s", c->peer, msg);
    else
        api->log(c->wi->inst, level, "console %s: %s", c->peer, msg);
}

void
wr_log(const struct wr_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wr_vlog(c, level, fmt, fmt, ap);
    va_end(ap);
}

/* The head buffer may hold credentials (Authorization, ?token=): wiped before it goes. */
static void
head_free(struct wr_conn *c)
{
    if (c->head) {
        explicit_bzero(c->head, c->head_cap);
        free(c->head);
    }
    c->head = NULL;
    c->head_len = c->head_used = c->head_cap = 0;
    if (c->req) {
        ws_request_wipe(c->req);
        free(c->req);
        c->req = NULL;
    }
}

/* ---------------------------------------------------------------------------- lifetime */

static void
conn_free(struct wr_conn *c)
{
    if (c->link.le_prev)
        LIST_REMOVE(c, link);
    head_free(c);
    free(c->what);
    free(c);
}

void
wr_conn_maybe_free(struct wr_conn *c)
{
    if (c->closing && !c->busy && !c->opening && !c->writes_pending)
        conn_free(c);
}

void
wr_conn_close(struct wr_conn *c, uint16_t code, const char *reason)
{
    struct wr_inst *wi = c->wi;
    const struct mps_api *api = wi->api;

    if (c->closing)
        return;
    c->closing = true;
    if (c->timer) {
        api->timer_stop(c->timer);
        c->timer = NULL;
    }
    if (c->auth_req) {
        api->auth_cancel(c->auth_req);
        c->auth_req = NULL;
    }
    if (c->chan) {
        api->close(c->chan, NULL, NULL);
        c->chan = NULL;
    }
    if (c->client) {
        if (c->state == WR_RELAY && code) {
            uint8_t frame[WS_CLOSE_FRAME_MAX];
            size_t n = code == WR_CLOSE_EMPTY ? ws_close_frame(frame, 0, NULL)
                                              : ws_close_frame(frame, code, reason);
            struct mps_iov iov = {frame, n};
            (void)api->write(c->client, &iov, 1, NULL, NULL); /* flushed by the close */
        }
        api->close(c->client, NULL, NULL);
        c->client = NULL;
    }
    if (c->state == WR_RELAY) {
        wi->relays_closed++;
        api->log(wi->inst, MPS_LOG_INFO,
                 "console %s: relay %s closed (%u): %s; %llu bytes to the device, %llu from it",
                 c->peer, c->what, code == WR_CLOSE_EMPTY ? 0u : code,
                 reason ? reason : "the browser closed", (unsigned long long)c->bytes_up,
                 (unsigned long long)c->bytes_down);
    }
    wr_conn_maybe_free(c);
}

/* Answer the upgrade request with an HTTP error, log why, close. */
void
wr_respond_error(struct wr_conn *c, unsigned status, const char *extra, const char *fmt, ...)
{
    char why[512], out[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (c->client) {
        c->wi->api->log_peer(c->wi->inst, c->client, MPS_LOG_WARNING, fmt, "console %s: %u %s",
                             c->peer, status, why);
        size_t n = ws_response_error(status, extra, why, out, sizeof(out));
        struct mps_iov iov = {out, n};
        if (n)
            (void)c->wi->api->write(c->client, &iov, 1, NULL, NULL);
    }
    wr_conn_close(c, 0, NULL);
}

/* -------------------------------------------------------------------------------- timer */

static uint64_t
deadline(const struct wr_conn *c)
{
    const struct wr_inst *wi = c->wi;
    if (c->state != WR_RELAY) /* from the accept to the 101, whatever moves */
        return c->accepted_ms + (uint64_t)wi->head_ms;
    return wi->idle_ms ? c->last_active + (uint64_t)wi->idle_ms : UINT64_MAX;
}

void
wr_timer_arm(struct wr_conn *c)
{
    uint64_t when = deadline(c), now = wr_now_ms();
    if (c->timer && when != UINT64_MAX)
        c->wi->api->timer_restart(c->timer, when > now ? when - now : 0);
}

static void
on_timeout(void *arg)
{
    struct wr_conn *c = arg;
    struct wr_inst *wi = c->wi;
    if (wr_now_ms() < deadline(c)) { /* activity moved it */
        wr_timer_arm(c);
        return;
    }
    c->busy++;
    switch (c->state) {
    case WR_HEAD:
        if (!c->head_len) {
            wr_log(c, MPS_LOG_DEBUG, "sent no request within %ld ms: closed", wi->head_ms);
            wr_conn_close(c, 0, NULL);
        } else {
            wr_respond_error(c, 408, NULL, "no complete upgrade request within %ld ms",
                             wi->head_ms);
        }
        break;
    case WR_AUTH:
        wr_respond_error(c, 503, NULL, "credentials not checked within %ld ms", wi->head_ms);
        break;
    case WR_OPENING:
        wr_respond_error(c, 504, NULL, "device %s did not open the channel within %ld ms",
                         c->req->device, wi->head_ms);
        break;
    case WR_RELAY:
        wr_log(c, MPS_LOG_INFO, "relay %s: idle for %ld ms: closed", c->what, wi->idle_ms);
        wr_conn_close(c, WS_CLOSE_NORMAL, "idle timeout");
        break;
    }
    c->busy--;
    wr_conn_maybe_free(c);
}

/* ---------------------------------------------------------------------- channel, upgrade */

static void
upgrade(struct wr_conn *c)
{
    struct wr_inst *wi = c->wi;
    const struct mps_api *api = wi->api;
    char out[512];
    size_t n = ws_response_101(c->req, out, sizeof(out));
    struct mps_iov iov = {out, n};

    if (!n || api->write(c->client, &iov, 1, NULL, NULL) < 0) {
        wr_log(c, MPS_LOG_INFO, "relay %s: the browser left before the 101", c->what);
        wr_conn_close(c, 0, NULL);
        return;
    }
    api->stream_established(c->client);
    wi->relays_opened++;
    api->log(wi->inst, MPS_LOG_INFO, "console %s: relay %s open%s%s", c->peer, c->what,
             c->req->protocol[0] ? ", subprotocol " : "", c->req->protocol);
    ws_request_wipe(c->req);
    free(c->req);
    c->req = NULL;
    wr_relay_start(c); /* frees the head; may free c */
}

static void
on_opened(void *arg, mps_stream *chan, int status)
{
    struct wr_conn *c = arg;

    c->opening = false;
    c->busy++;
    if (c->closing) { /* the browser left, timed out, or mpsd is stopping */
        if (chan)
            c->wi->api->close(chan, NULL, NULL);
    } else if (!chan) {
        wr_respond_error(c, chan_open_http_status(status), NULL, "device %s: %s", c->req->device,
                         chan_open_failure(status));
    } else {
        c->chan = chan;
        upgrade(c);
    }
    c->busy--;
    wr_conn_maybe_free(c);
}

/* Authorized: the policy, then the channel. */
void
wr_open_channel(struct wr_conn *c, const char *who)
{
    struct wr_inst *wi = c->wi;
    struct ws_request *r = c->req;
    char what[WS_NAME_MAX + WR_USER_MAX + 32];

    snprintf(what, sizeof(what), "%s:%u as %s", r->device, r->port, who);
    free(c->what);
    c->what = strdup(what);
    if (!c->what) {
        wr_respond_error(c, 503, NULL, "out of memory");
        return;
    }
    /* Policy before the lookup: a refused port does not tell whether the device exists. */
    if (!MPS_PORT_IN_SET(wi->allowed, r->port)) {
        wr_respond_error(c, 403, NULL, "port %u is not in AllowedPorts", r->port);
        return;
    }
    struct mps_chan_req req = {.device = r->device, .port = r->port, .console = c->client};
    c->state = WR_OPENING;
    c->opening = true;
    int rc = wi->api->chan_open(wi->inst, &req, on_opened, c);
    if (rc >= 0)
        return;
    c->opening = false;
    switch (rc) {
    case -ENOENT:
        wr_respond_error(c, 404, NULL, "device %s is not connected", r->device);
        break;
    case -ECONNREFUSED:
        wr_respond_error(c, 502, NULL, "device %s does not forward port %u", r->device, r->port);
        break;
    case -EMFILE:
        wr_respond_error(c, 503, NULL, "device %s: its channel limit is reached", r->device);
        break;
    default:
        wr_respond_error(c, 502, NULL, "device %s: cannot open a channel: %s", r->device,
                         strerror(-rc));
        break;
    }
}

/* --------------------------------------------------------------------------- the request */

/* Append to the head buffer, growing it up to its bound (a copy, the old one wiped: it may
 * hold credentials). *took_r: how many bytes fitted. -ENOMEM, else 0. */
static int
head_append(struct wr_conn *c, const char *data, size_t len, size_t *took_r)
{
    const size_t max = WS_HEAD_MAX + WR_EARLY_MAX;
    if (len > max - c->head_len)
        len = max - c->head_len;
    *took_r = 0;
    if (c->head_len + len > c->head_cap) {
        size_t cap = c->head_cap ? c->head_cap : WR_HEAD_BUF_MIN;
        while (cap < c->head_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *p = malloc(cap);
        if (!p)
            return -ENOMEM;
        if (c->head) {
            memcpy(p, c->head, c->head_len);
            explicit_bzero(c->head, c->head_cap);
            free(c->head);
        }
        c->head = p;
        c->head_cap = cap;
    }
    if (len)
        memcpy(c->head + c->head_len, data, len);
    c->head_len += len;
    *took_r = len;
    return 0;
}

static void
on_head_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct wr_conn *c = arg;
    struct wr_inst *wi = c->wi;
    (void)s;
    if (status < 0) {
        wr_log(c, MPS_LOG_DEBUG, "left before its upgrade request was answered (%s)",
               status == MPS_EOF ? "end of stream" : strerror(-status));
        wr_conn_close(c, 0, NULL);
        return;
    }
    size_t old = c->head_len, took;
    int rc = head_append(c, data->base, data->len, &took);
    size_t from = old > 3 ? old - 3 : 0; /* the empty line may have begun in the last read */
    size_t hl = rc < 0 ? 0 : ws_head_length(c->head + from, c->head_len - from);
    c->busy++;
    if (rc < 0) {
        wr_respond_error(c, 503, NULL, "out of memory");
    } else if (!hl) {
        if (c->head_len > WS_HEAD_MAX)
            wr_respond_error(c, 431, NULL, "request head larger than %d bytes", WS_HEAD_MAX);
    } else if (took < data->len) {
        wr_respond_error(c, 400, NULL, "more than %d bytes sent before the 101", WR_EARLY_MAX);
    } else {
        c->head_used = from + hl;
        wi->api->read_stop(c->client); /* until the WebSocket is open */
        c->req = calloc(1, sizeof(*c->req));
        if (!c->req) {
            wr_respond_error(c, 503, NULL, "out of memory");
        } else {
            ws_request_parse(c->head, c->head_used, c->req);
            if (c->req->status)
                wr_respond_error(c, c->req->status, c->req->extra, "%s", c->req->why);
            else if (!wr_origin_allowed(wi, c->req))
                wr_respond_error(c, 403, NULL, "origin %.*s is not in AllowOrigin",
                                 (int)(c->req->origin_len > 200 ? 200 : c->req->origin_len),
                                 c->req->origin);
            else
                wr_authorize(c);
        }
    }
    c->busy--;
    wr_conn_maybe_free(c);
}

/* A browser: accepted on the instance's listener, or served by a layer (TLS: wss://). */
static void
wr_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct wr_inst *wi = ctx->data;
    const struct mps_api *api = wi->api;

    struct wr_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(wi->inst, MPS_LOG_ERROR, "out of memory: console %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->wi = wi;
    c->client = client;
    c->state = WR_HEAD;
    c->accepted_ms = c->last_active = wr_now_ms();
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    LIST_INSERT_HEAD(&wi->conns, c, link);
    c->timer = api->timer_start(wi->inst, (uint64_t)wi->head_ms, on_timeout, c);
    if (!c->timer) {
        wr_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        wr_conn_close(c, 0, NULL);
        return;
    }
    int rc = api->read_start(client, on_head_read, c);
    if (rc < 0) {
        wr_log(c, MPS_LOG_WARNING, "cannot read: %s", strerror(-rc));
        wr_conn_close(c, 0, NULL);
    }
}

/* ------------------------------------------------------------------------------- hooks */

/* Load TokenFile into *tf_r; 0 or -errno with the reason logged (file:line). */
static int
tokens_load(const struct mps_ctx *ctx, struct token_file **tf_r)
{
    struct wr_inst *wi = ctx->data;
    char err[512];
    *tf_r = NULL;
    if (!wi->token_path || !wi->token_path[0])
        return 0;
    int rc = token_file_load(wi->token_path, tf_r, err, sizeof(err));
    if (rc < 0)
        ctx->api->log(ctx->inst, MPS_LOG_ERROR, "TokenFile %s", err);
    return rc;
}

static int
check_options(const struct mps_ctx *ctx, const struct token_file *tf)
{
    struct wr_inst *wi = ctx->data;
    if (wi->auth_mode == WR_AUTH_ON && !ctx->api->auth_required(ctx->inst) && !tf) {
        ctx->api->log(ctx->inst, MPS_LOG_ERROR,
                      "Auth = on needs a TokenFile or a console realm that checks credentials "
                      "([Socks_Authenticate] NeedAuthentication = true and a Plugin)");
        return -EINVAL;
    }
    return wr_origins_check(ctx);
}

static int
wr_check(const struct mps_ctx *ctx)
{
    struct token_file *tf = NULL;
    int rc = tokens_load(ctx, &tf);
    if (rc == 0)
        rc = check_options(ctx, tf);
    token_file_free(tf);
    return rc;
}

static int
wr_init(const struct mps_ctx *ctx)
{
    struct wr_inst *wi = ctx->data;
    const struct mps_listen_conf *lc = ctx->api->listen_conf(ctx->inst);
    wi->api = ctx->api;
    wi->inst = ctx->inst;
    wi->idle_ms = lc->idle_timeout_ms;
    wi->head_ms = lc->head_timeout_ms;
    LIST_INIT(&wi->conns);
    int rc = tokens_load(ctx, &wi->tokens);
    if (rc < 0)
        return rc;
    rc = check_options(ctx, wi->tokens);
    if (rc < 0) {
        token_file_free(wi->tokens);
        wi->tokens = NULL;
        return rc;
    }
    for (unsigned i = 0; i < lc->naddrs; i++)
        if (!lc->addrs[i].loopback && !wr_auth_needed(wi))
            wi->api->log(wi->inst, MPS_LOG_WARNING,
                         "WebSocket relay on %s port %u without authorization: anyone who "
                         "reaches it reaches the devices' ports (restrict AllowFrom)",
                         lc->addrs[i].host, lc->addrs[i].port);
    wi->api->log(
        wi->inst, MPS_LOG_INFO, "WebSocket relay, authorization %s (%s%s%s), MaxFrameSize %ld",
        wr_auth_needed(wi) ? "required" : "off",
        wr_realm_checks(wi) ? "Basic through the console realm" : "no Basic",
        wi->tokens ? ", tokens from " : "", wi->tokens ? wi->token_path : "", wi->max_frame);
    if (wi->tokens)
        wi->api->log(wi->inst, MPS_LOG_INFO, "%zu tokens from %s", token_file_count(wi->tokens),
                     wi->token_path);
    return 0;
}

static int
wr_reload(const struct mps_ctx *ctx)
{
    struct wr_inst *wi = ctx->data;
    struct token_file *tf = NULL;
    if (!wi->token_path || !wi->token_path[0])
        return 0;
    if (tokens_load(ctx, &tf) < 0) {
        ctx->api->log(ctx->inst, MPS_LOG_ERROR, "reload: keeping the %zu tokens loaded before",
                      token_file_count(wi->tokens));
        return -EINVAL;
    }
    token_file_free(wi->tokens);
    wi->tokens = tf;
    ctx->api->log(ctx->inst, MPS_LOG_INFO, "reload: %zu tokens from %s", token_file_count(tf),
                  wi->token_path);
    return 0;
}

static void
wr_stop(const struct mps_ctx *ctx)
{
    struct wr_inst *wi = ctx->data;
    /* Connections waiting for a channel stay listed until its callback, which the core's
     * shutdown delivers; open WebSockets hear 1001 first. */
    for (struct wr_conn *c = LIST_FIRST(&wi->conns), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        wr_conn_close(c, WS_CLOSE_GOING_AWAY, "mpsd is shutting down");
    }
}

static void
wr_fini(const struct mps_ctx *ctx)
{
    struct wr_inst *wi = ctx->data;
    ctx->api->log(ctx->inst, MPS_LOG_DEBUG, "%llu relays opened, %llu closed",
                  (unsigned long long)wi->relays_opened, (unsigned long long)wi->relays_closed);
    token_file_free(wi->tokens);
    wi->tokens = NULL;
}

static const char *const wr_auth_choices[] = {"auto", "on", "off", NULL};

static const struct mps_option wr_options[] = {
    {.name = "AllowedPorts",
     .type = MPS_OPT_PORTS,
     .offset = offsetof(struct wr_inst, allowed),
     .dflt = "16992 16993 16994 16995",
     .help = "device ports a browser may reach (space- or comma-separated)"},
    {.name = "MaxFrameSize",
     .type = MPS_OPT_INT,
     .offset = offsetof(struct wr_inst, max_frame),
     .dflt = "1048576",
     .min = 125,
     .max = 64L * 1024 * 1024,
     .help = "largest frame payload a browser may send, in bytes (close 1009 beyond)"},
    {.name = "Auth",
     .type = MPS_OPT_ENUM,
     .offset = offsetof(struct wr_inst, auth_mode),
     .dflt = "auto",
     .choices = wr_auth_choices,
     .help = "auto (required when the console realm checks credentials or a TokenFile is set), "
             "on or off"},
    {.name = "TokenFile",
     .type = MPS_OPT_PATH,
     .offset = offsetof(struct wr_inst, token_path),
     .dflt = "",
     .help = "bearer tokens, lines NAME SCOPES SHA256 (relay scope needed); reloaded on HUP"},
    {.name = "AllowOrigin",
     .type = MPS_OPT_STR,
     .offset = offsetof(struct wr_inst, allow_origin),
     .dflt = "*",
     .help = "origins (scheme://host[:port]) whose pages may open a relay, or * for any; a "
             "handshake without Origin (not a browser) is not checked"},
    MPS_OPTIONS_END,
};

/* Beyond MaxConnections: a whole HTTP answer, before any WebSocket exists. */
static const char wr_busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";

static const struct mps_listen_role wr_listen = {
    .default_listen = "127.0.0.1:7795",
    .head_timeout_ms = 10000, /* from the accept to the 101: request, auth, channel */
    .idle_timeout_ms = 0,     /* SOL and KVM sessions sit idle for hours: none by default */
    .max_connections = 10000,
    .max_per_source = 2000,
    .max_startups = "1000:30:3000",
    .busy_reply = wr_busy,
    .busy_reply_len = sizeof(wr_busy) - 1,
};

static const struct mps_module wr_module = {
    MPS_MODULE_HEADER,
    .name = "ws_relay",
    .version = PACKAGE_VERSION,
    .description = "WebSocket relay (RFC 6455) from browser consoles into AMT devices' APF "
                   "channels",
    .inst_size = sizeof(struct wr_inst),
    .options = wr_options,
    .init = wr_init,
    .fini = wr_fini,
    .reload = wr_reload,
    .stop = wr_stop,
    .accept = wr_accept,
    .check = wr_check,
    .listen = &wr_listen,
};

MPS_MODULE_EXPORT(ws_relay, wr_module)
