/* rest_conn.c - admin_http's connections: reading, request framing (rest_http.c), responses,
 * backpressure, timers and lifetime.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The parser copies what a request needs as the bytes arrive, so the connection keeps input
 * only while a request waits: for its credential check (reading stops until the verdict) or
 * for the client to take more than REST_HIGH_WATER of earlier answers (reading stops until the
 * queue falls to it). Requests are answered one at a time, in order (pipelining). HeadTimeout
 * bounds each request from its first byte, IdleTimeout the silence between requests. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define REST_IN_MAX (64 * 1024) /* pipelined input held while a request waits */

uint64_t
rest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Warnings and errors are what a client can provoke at will: rate-limited per address. */
void
rest_conn_log(const struct rest_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct mps_api *api = c->ri->api;
    if (level <= MPS_LOG_WARNING && c->client)
        api->log_peer(c->ri->inst, c->client, level, fmt, "client %s: %s", c->peer, msg);
    else
        api->log(c->ri->inst, level, "client %s: %s", c->peer, msg);
}

/* ----------------------------------------------------------------------------- lifetime */

static void
conn_free(struct rest_conn *c)
{
    LIST_REMOVE(c, link);
    if (c->sse)
        c->ri->nsubscribers--;
    rest_parser_free(&c->parser);
    rest_buf_free(&c->in);
    if (c->auth_ok) {
        explicit_bzero(c->auth_ok, strlen(c->auth_ok));
        free(c->auth_ok);
    }
    free(c);
}

static void
conn_maybe_free(struct rest_conn *c)
{
    if (c->closing && !c->busy && !c->writes_pending)
        conn_free(c);
}

void
rest_conn_unbusy(struct rest_conn *c)
{
    c->busy--;
    conn_maybe_free(c);
}

/* Close the connection; what is queued still reaches the client. */
void
rest_conn_close(struct rest_conn *c)
{
    const struct mps_api *api = c->ri->api;
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
    if (c->client) {
        api->close(c->client, NULL, NULL);
        c->client = NULL;
    }
    conn_maybe_free(c);
}

/* ------------------------------------------------------------------------------ writing */

static void reading_set(struct rest_conn *c);

static void
written(void *arg, int status)
{
    struct rest_conn *c = arg;
    (void)status; /* a dead client is noticed by its read callback */
    c->writes_pending--;
    if (!c->closing && c->write_paused &&
        c->ri->api->write_queue_size(c->client) <= REST_HIGH_WATER) {
        c->write_paused = false;
        c->busy++;
        rest_conn_process(c);
        c->busy--;
    }
    conn_maybe_free(c);
}

int
rest_conn_write(struct rest_conn *c, const char *p, size_t len)
{
    if (c->closing)
        return -1;
    struct mps_iov iov = {p, len};
    if (c->ri->api->write(c->client, &iov, 1, written, c) < 0) {
        rest_conn_close(c);
        return -1;
    }
    c->writes_pending++;
    return 0;
}

size_t
rest_conn_queued(const struct rest_conn *c)
{
    return c->client ? c->ri->api->write_queue_size(c->client) : 0;
}

void
rest_respond(struct rest_conn *c, int status, const char *type, const char *body, size_t len,
             const char *extra)
{
    const struct mps_api *api = c->ri->api;
    if (c->closing)
        return;
    char head[768];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: mpsd/%s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n",
                     status, rest_status_text(status), PACKAGE_VERSION, type, len,
                     !c->keep_alive ? "Connection: close\r\n"
                     : c->http10    ? "Connection: keep-alive\r\n" /* 1.0 closes by default */
                                    : "",
                     extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head)) { /* extra is ours and short: cannot happen */
        rest_conn_close(c);
        return;
    }
    struct mps_iov iov[2] = {{head, (size_t)n}, {body, len}};
    unsigned niov = len && !c->head_only ? 2 : 1;
    if (api->write(c->client, iov, niov, written, c) < 0) {
        rest_conn_close(c);
        return;
    }
    c->writes_pending++;
    if (api->write_queue_size(c->client) > REST_HIGH_WATER)
        c->write_paused = true;
}

void
rest_respond_json(struct rest_conn *c, int status, json_t *json, const char *extra)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        rest_conn_log(c, MPS_LOG_ERROR, "out of memory building a response");
        static const char oom[] = "{\"error\":\"out of memory\"}\n";
        c->keep_alive = false;
        rest_respond(c, 500, "application/json", oom, sizeof(oom) - 1, NULL);
        rest_conn_close(c);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\0';
    /* A newline ends the document, for terminals (curl) and line-oriented tools. */
    char *nl = realloc(text, len + 2);
    if (nl) {
        text = nl;
        text[len++] = '\n';
        text[len] = '\0';
    }
    rest_respond(c, status, "application/json", text, len, extra);
    free(text);
}

void
rest_respond_error(struct rest_conn *c, int status, const char *msg, const char *extra)
{
    rest_respond_json(c, status, json_pack("{s:s}", "error", msg), extra);
}

/* ------------------------------------------------------------------------------ reading */

static void on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

static void
reading_set(struct rest_conn *c)
{
    if (!c->client)
        return;
    bool want =
        !c->closing && !c->eof && !c->auth_req && !c->write_paused && c->in.len < REST_IN_MAX;
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        c->ri->api->read_start(c->client, on_read, c);
    else
        c->ri->api->read_stop(c->client);
}

static void timer_arm(struct rest_conn *c);

static void
consume(struct rest_conn *c, size_t n)
{
    if (!n)
        return;
    explicit_bzero(c->in.p, n); /* may hold credentials */
    memmove(c->in.p, c->in.p + n, c->in.len - n);
    c->in.len -= n;
}

void
rest_conn_request_done(struct rest_conn *c)
{
    bool keep = c->keep_alive;
    c->authorized = false;
    c->head_only = false;
    if (c->sse) { /* no more requests: give the buffers back, a subscriber may idle for days */
        rest_parser_free(&c->parser);
        rest_parser_init(&c->parser, (size_t)c->ri->max_head, (size_t)c->ri->max_body);
        rest_buf_free(&c->in);
        return;
    }
    rest_parser_reset(&c->parser);
    /* A pipelined request is under way at once; otherwise its first byte starts the clock. */
    c->req_start = c->in.len ? rest_now_ms() : 0;
    timer_arm(c);
    if (!keep)
        rest_conn_close(c);
}

void
rest_conn_process(struct rest_conn *c)
{
    struct rest_parser *p = &c->parser;
    c->busy++;
    while (!c->closing && !c->sse && !c->auth_req && !c->write_paused) {
        if (!p->done && !p->status && c->in.len)
            consume(c, rest_parser_feed(p, c->in.p, c->in.len));
        if (p->status) {
            rest_conn_log(c, MPS_LOG_DEBUG, "%d: %s", p->status, p->reason);
            c->keep_alive = false;
            rest_respond_error(c, p->status, p->reason, NULL);
            rest_conn_close(c);
            break;
        }
        if (!p->done) {
            if (c->eof) {
                if (rest_parser_partial(p))
                    rest_conn_log(c, MPS_LOG_DEBUG, "closed in the middle of a request");
                rest_conn_close(c);
            }
            break;
        }
        c->keep_alive = p->rq.keep_alive;
        c->http10 = p->rq.http10;
        if (rest_serve(c, &p->rq))
            break; /* a credential check: its verdict goes on from here */
        if (c->closing)
            break;
        rest_conn_request_done(c);
    }
    reading_set(c);
    rest_conn_unbusy(c);
}

static void
on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct rest_conn *c = arg;
    (void)s;
    if (c->closing)
        return;
    c->busy++;
    c->last_active = rest_now_ms();
    if (status < 0) {
        c->eof = true;
        c->reading = false;
        if (c->sse) { /* the subscriber left */
            rest_conn_close(c);
            goto out;
        }
    } else if (data->len) {
        if (c->sse) /* an event stream takes no more requests: what comes is ignored */
            goto out;
        if (!c->req_start) { /* a new request's first byte: HeadTimeout runs from here */
            c->req_start = c->last_active;
            timer_arm(c);
        }
        if (rest_buf_add(&c->in, data->base, data->len) < 0) {
            rest_conn_log(c, MPS_LOG_ERROR, "out of memory: closed");
            rest_conn_close(c);
            goto out;
        }
    }
    rest_conn_process(c);
out:
    rest_conn_unbusy(c);
}

/* ------------------------------------------------------------------------------- timers */

/* The request deadline when a request is being read (HeadTimeout from its first byte, however
 * slowly it comes), else the idle deadline; an event stream's next keepalive. */
static uint64_t
deadline(const struct rest_conn *c)
{
    const struct rest_inst *ri = c->ri;
    if (c->sse)
        return c->last_active + (uint64_t)ri->event_keepalive_ms;
    uint64_t idle = ri->idle_ms ? c->last_active + (uint64_t)ri->idle_ms : UINT64_MAX;
    uint64_t req = c->req_start ? c->req_start + (uint64_t)ri->head_ms : UINT64_MAX;
    return idle < req ? idle : req;
}

static void
timer_arm(struct rest_conn *c)
{
    uint64_t when = deadline(c), now = rest_now_ms();
    if (c->timer && when != UINT64_MAX)
        c->ri->api->timer_restart(c->timer, when > now ? when - now : 0);
}

static void
on_timer(void *arg)
{
    struct rest_conn *c = arg;
    struct rest_inst *ri = c->ri;
    uint64_t now = rest_now_ms();
    c->busy++;
    if (c->sse) {
        c->last_active = now;
        rest_sse_keepalive(c);
        if (!c->closing)
            timer_arm(c);
        goto out;
    }
    bool late = c->req_start && now >= c->req_start + (uint64_t)ri->head_ms;
    /* A pending credential check has a deadline of its own; a request being answered (its
     * client not reading) is bounded by IdleTimeout through the check below. */
    if ((!late && now < deadline(c)) || c->auth_req) {
        if (c->auth_req)
            ri->api->timer_restart(c->timer, (uint64_t)(ri->idle_ms ? ri->idle_ms : ri->head_ms));
        else
            timer_arm(c);
        goto out;
    }
    c->keep_alive = false;
    if (c->parser.done) {
        rest_conn_log(c, MPS_LOG_DEBUG, "did not read its answers for %ld ms: closed",
                      ri->idle_ms ? ri->idle_ms : ri->head_ms);
    } else if (rest_parser_partial(&c->parser) || c->in.len) {
        rest_conn_log(c, MPS_LOG_DEBUG, "no complete request within %ld ms: 408",
                      late ? ri->head_ms : ri->idle_ms);
        rest_respond_error(c, 408, "no complete request in time", NULL);
    } else {
        rest_conn_log(c, MPS_LOG_DEBUG, "idle for %ld ms: closed", ri->idle_ms);
    }
    rest_conn_close(c);
out:
    rest_conn_unbusy(c);
}

/* ------------------------------------------------------------------------------- accept */

void
rest_conn_accept(struct rest_inst *ri, mps_stream *client)
{
    const struct mps_api *api = ri->api;
    struct rest_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(ri->inst, MPS_LOG_ERROR, "out of memory: client %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->ri = ri;
    c->client = client;
    c->keep_alive = true;
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    rest_parser_init(&c->parser, (size_t)ri->max_head, (size_t)ri->max_body);
    c->last_active = c->req_start = rest_now_ms(); /* the first request is due from the accept */
    LIST_INSERT_HEAD(&ri->conns, c, link);
    c->timer = api->timer_start(ri->inst, deadline(c) - c->last_active, on_timer, c);
    if (!c->timer) {
        rest_conn_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        rest_conn_close(c);
        return;
    }
    reading_set(c);
}
