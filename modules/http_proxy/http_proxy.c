/* http_proxy.c - console module: an HTTP proxy (RFC 7230/7231) into AMT devices' APF channels.
 * SPDX-License-Identifier: Apache-2.0
 *
 * What the reference deployment's patched Apache did for WS-Management consoles: absolute-URI
 * requests ("POST http://dev1.example.com:16992/wsman HTTP/1.1") go to the device over an APF
 * channel in origin form, and CONNECT host:port becomes a raw pipe (TLS ports 16993/16995,
 * redirection). The only place a request can lead is an APF channel to a registered device on
 * an allowed port: there is no code here that opens a network connection.
 *
 * This file: the module, its listener and each console connection's lifetime (idle timer,
 * close, free) and flow control; http_exchange.c moves the requests through a connection,
 * one exchange at a time, in order. The channel of an exchange is kept for the next request to
 * the same device and port. Console bytes are kept in one buffer only until they are consumed
 * (a head being read, pipelined requests) and it is bounded: reading stops when it is full.
 * Bodies are never buffered here: each direction stops reading its source while its sink's
 * write queue is above HP_HIGH_WATER (on a channel, not reading withholds WINDOW_ADJUST, so
 * the device waits). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "http_proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* ------------------------------------------------------------------------------ helpers */

uint64_t
hp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Warnings and errors are what a console can provoke at will: rate-limited per address and
 * kind (by default the call site). */
static void
hp_vlog_kind(const struct hp_conn *c, enum mps_log_level level, const void *kind, const char *fmt,
             va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const struct mps_api *api = c->hi->api;
    if (level <= MPS_LOG_WARNING && c->client)
        api->log_peer(c->hi->inst, c->client, level, kind, "console %s: %s", c->peer, msg);
    else
        api->log(c->hi->inst, level, "console %s: %s", c->peer, msg);
}

void
hp_log(const struct hp_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_vlog_kind(c, level, fmt, fmt, ap);
    va_end(ap);
}

void
hp_log_kind(const struct hp_conn *c, enum mps_log_level level, const void *kind, const char *fmt,
            ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_vlog_kind(c, level, kind, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------- lifetime */

static void
conn_unlink(struct hp_conn *c)
{
    if (c->link.le_prev) {
        LIST_REMOVE(c, link);
        c->link.le_prev = NULL;
    }
}

static void
hp_conn_free(struct hp_conn *c)
{
    conn_unlink(c);
    hh_msg_free(&c->req);
    hh_msg_free(&c->resp);
    if (c->in.p)
        explicit_bzero(c->in.p, c->in.cap); /* may hold credentials */
    hh_buf_free(&c->in);
    hh_buf_free(&c->head_out);
    if (c->auth_ok) {
        explicit_bzero(c->auth_ok, strlen(c->auth_ok));
        free(c->auth_ok);
    }
    free(c);
}

/* Free once nothing can call back into c any more. */
void
hp_conn_maybe_free(struct hp_conn *c)
{
    if (c->closing && !c->busy && !c->opening && !c->writes_pending)
        hp_conn_free(c);
}

void
hp_chan_drop(struct hp_conn *c)
{
    if (c->chan) {
        c->hi->api->close(c->chan, NULL, NULL);
        c->chan = NULL;
    }
    c->chan_reading = c->down_paused = false;
}

/* Close everything; queued bytes (an error response) still reach the console. */
void
hp_conn_close(struct hp_conn *c)
{
    const struct mps_api *api = c->hi->api;
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
    hp_chan_drop(c);
    if (c->client) {
        api->close(c->client, NULL, NULL);
        c->client = NULL;
    }
    hp_conn_maybe_free(c);
}

/* ------------------------------------------------------------------------ flow control */

void
hp_client_reading_set(struct hp_conn *c)
{
    if (!c->client)
        return;
    bool want = !c->closing && !c->client_eof && !c->up_paused &&
                c->in.len < (size_t)c->hi->max_head + HP_PIPELINE_MAX;
    if (want == c->client_reading)
        return;
    c->client_reading = want;
    if (want)
        c->hi->api->read_start(c->client, hp_on_client_read, c);
    else
        c->hi->api->read_stop(c->client);
}

void
hp_chan_reading_set(struct hp_conn *c)
{
    if (!c->chan)
        return;
    bool want = !c->closing && !c->down_paused;
    if (want == c->chan_reading)
        return;
    c->chan_reading = want;
    if (want)
        c->hi->api->read_start(c->chan, hp_on_chan_read, c);
    else
        c->hi->api->read_stop(c->chan);
}

/* A write that crossed HP_HIGH_WATER has left its queue: the paused source may go on. */
static void
hp_drained(void *arg, int status)
{
    struct hp_conn *c = arg;
    (void)status; /* a failed sink is noticed by its own read callback or the next write */
    c->writes_pending--;
    c->busy++;
    if (!c->closing) {
        c->up_paused = c->down_paused = false;
        hp_client_reading_set(c);
        hp_chan_reading_set(c);
        hp_pump(c); /* request bytes may be waiting for the device */
    }
    c->busy--;
    hp_conn_maybe_free(c);
}

/* Write to a sink; returns false when the sink is dead. A write that leaves more than
 * HP_HIGH_WATER queued carries a callback, and the caller's source pauses until it runs. */
bool
hp_write(struct hp_conn *c, mps_stream *sink, const void *p, size_t n, bool *paused)
{
    const struct mps_api *api = c->hi->api;
    struct mps_iov iov = {p, n};
    bool crossing = api->write_queue_size(sink) + n > HP_HIGH_WATER;
    if (api->write(sink, &iov, 1, crossing ? hp_drained : NULL, c) < 0)
        return false;
    if (crossing) {
        c->writes_pending++;
        if (api->write_queue_size(sink) > HP_HIGH_WATER)
            *paused = true;
    }
    return true;
}

/* The head deadline, when a head is under way; otherwise the idle deadline. */
static uint64_t
hp_deadline(const struct hp_conn *c)
{
    const struct hp_inst *hi = c->hi;
    uint64_t idle = hi->idle_ms ? c->last_active + (uint64_t)hi->idle_ms : UINT64_MAX;
    uint64_t head = c->state == HP_HEAD && c->head_start ? c->head_start + (uint64_t)hi->head_ms
                                                         : UINT64_MAX;
    return idle < head ? idle : head;
}

void
hp_timer_arm(struct hp_conn *c)
{
    uint64_t when = hp_deadline(c), now = hp_now_ms();
    if (c->timer && when != UINT64_MAX)
        c->hi->api->timer_restart(c->timer, when > now ? when - now : 0);
}

static void
hp_timeout(void *arg)
{
    struct hp_conn *c = arg;
    struct hp_inst *hi = c->hi;
    uint64_t now = hp_now_ms();
    bool head_late = c->state == HP_HEAD && c->head_start &&
                     now >= c->head_start + (uint64_t)hi->head_ms;
    if (!head_late && now < hp_deadline(c)) {
        hp_timer_arm(c); /* activity moved the deadline */
        return;
    }
    c->busy++;
    if (head_late && !c->req.head_seen && !c->in.len) {
        hp_log(c, MPS_LOG_DEBUG, "sent no request within %ld ms: closed", hi->head_ms);
    } else if (head_late) {
        /* However slowly it trickles in, a head gets HeadTimeout: one byte every few
         * seconds must not hold a connection forever. */
        hp_error(c, 408, NULL, "no complete request head within %ld ms", hi->head_ms);
    } else if (c->state == HP_HEAD && !c->req.head_seen && !c->in.len) {
        hp_log(c, MPS_LOG_DEBUG, "idle for %ld ms: closed", hi->idle_ms);
    } else if (c->state == HP_HEAD) {
        hp_error(c, 408, NULL, "no complete request within %ld ms", hi->idle_ms);
    } else {
        hp_error(c, 504, NULL, "nothing moved for %ld ms (%s)", hi->idle_ms,
                 c->state == HP_AUTH      ? "authenticating"
                 : c->state == HP_OPENING ? "opening a channel"
                                          : "exchange stalled");
    }
    hp_conn_close(c);
    c->busy--;
    hp_conn_maybe_free(c);
}

/* A console: accepted on the instance's listener, or served by a layer (TLS). */
static void
hp_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct hp_inst *hi = ctx->data;
    const struct mps_api *api = hi->api;

    struct hp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(hi->inst, MPS_LOG_ERROR, "out of memory: console %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->hi = hi;
    c->client = client;
    c->state = HP_HEAD;
    c->last_active = c->head_start = hp_now_ms(); /* the first head is due from the accept */
    hh_msg_init(&c->req, HTTP_REQUEST, (size_t)hi->max_head);
    hh_msg_init(&c->resp, HTTP_RESPONSE, (size_t)hi->max_head);
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    LIST_INSERT_HEAD(&hi->conns, c, link);
    c->timer = api->timer_start(hi->inst, hp_deadline(c) - c->last_active, hp_timeout, c);
    if (!c->timer) {
        hp_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        hp_conn_close(c);
        return;
    }
    hp_client_reading_set(c);
}

/* ------------------------------------------------------------------------------- hooks */

static int
hp_init(const struct mps_ctx *ctx)
{
    struct hp_inst *hi = ctx->data;
    const struct mps_listen_conf *lc = ctx->api->listen_conf(ctx->inst);
    hi->api = ctx->api;
    hi->inst = ctx->inst;
    hi->idle_ms = lc->idle_timeout_ms;
    hi->head_ms = lc->head_timeout_ms;
    return 0;
}

static void
hp_stop(const struct mps_ctx *ctx)
{
    struct hp_inst *hi = ctx->data;
    /* Connections waiting for a channel or a write stay listed until those callbacks, which
     * the core's shutdown delivers. */
    for (struct hp_conn *c = LIST_FIRST(&hi->conns), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        c->resp_started = true; /* no status line in the middle of a shutdown */
        hp_conn_close(c);
    }
}

static const struct mps_option hp_options[] = {
    {.name = "AllowedPorts", .type = MPS_OPT_PORTS, .offset = offsetof(struct hp_inst, allowed),
     .dflt = "16992 16993 16994 16995 623 664 5900", .alias = "AllowCONNECT",
     .help = "device ports consoles may reach, by CONNECT or absolute URI (space- or "
             "comma-separated)"},
    {.name = "MaxHeaderSize", .type = MPS_OPT_INT, .offset = offsetof(struct hp_inst, max_head),
     .dflt = "65536", .min = 1024, .max = 1024 * 1024,
     .help = "largest request or response head in bytes (431 beyond)"},
    MPS_OPTIONS_END,
};

static const char *const hp_aliases[] = {
    "HttpListenIP", "ListenIP", "HttpListenPort", "ListenPort", NULL,
};

/* Beyond MaxConnections, as docs/mps.conf.5 and admin_soap answer: a whole response. */
static const char hp_busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";

static const struct mps_listen_role hp_listen = {
    .default_listen = "127.0.0.1:8080",
    .aliases = hp_aliases,
    .head_timeout_ms = 10000, /* each request head, from its first byte */
    .idle_timeout_ms = 60000, /* nothing moved (not after CONNECT) */
    .max_connections = 10000,
    .max_per_source = 2000,
    .max_startups = "1000:30:3000",
    .busy_reply = hp_busy,
    .busy_reply_len = sizeof(hp_busy) - 1,
};

static const struct mps_module hp_module = {
    MPS_MODULE_HEADER,
    .name = "http_proxy",
    .version = PACKAGE_VERSION,
    .description = "HTTP proxy (absolute URI and CONNECT) into AMT devices' APF channels",
    .inst_size = sizeof(struct hp_inst),
    .options = hp_options,
    .init = hp_init,
    .stop = hp_stop,
    .accept = hp_accept,
    .listen = &hp_listen,
};

MPS_MODULE_EXPORT(http_proxy, hp_module)
