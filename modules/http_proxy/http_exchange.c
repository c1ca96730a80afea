/* http_exchange.c - one request/response exchange of the http_proxy module.
 * SPDX-License-Identifier: Apache-2.0
 *
 * HEAD (read the request head) -> [AUTH] -> [OPENING a channel] -> FORWARD (request body up,
 * response down, concurrently) -> HEAD again, or CONNECT -> the core's splice. Heads are
 * parsed and rewritten by http_head.c; bodies pass through as received, framing included.
 * Every function may close the connection: callers check c->closing before going on, and
 * entry points from the core hold c->busy so c outlives the call. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "http_proxy.h"
#include "chan_status.h"
#include "http_basic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void hp_down(struct hp_conn *c, const char *data, size_t len);

/* ------------------------------------------------------------------------- responses */

/* Answer the current request ourselves. keep: the connection may serve the next request,
 * which holds only when the request had no body still unread. */
void
hp_error(struct hp_conn *c, unsigned status, const char *extra, const char *fmt, ...)
{
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    hp_log_kind(c, MPS_LOG_WARNING, fmt, "%s: %u %s", c->what[0] ? c->what : "request", status,
                text);
    if (c->resp_started || !c->client) { /* too late for a status: cutting it short says it */
        hp_conn_close(c);
        return;
    }
    if (c->state == HP_FORWARD)
        hp_chan_drop(c); /* the exchange failed on it: never reuse it */
    /* Errors about the request itself leave the stream unparsable or the console suspect;
     * refusals (403, 407, 502, 503) of a bodiless request keep the connection. */
    bool refusal = status == 403 || status == 407 || status == 502 || status == 503;
    bool keep = refusal && c->req.head_done && c->req.msg_done && c->req.keep_alive &&
                !c->client_eof;
    struct hh_buf out = {0};
    if (hh_build_error(&out, status, text, extra, keep) == 0)
        hp_write(c, c->client, out.p, out.len, &c->down_paused);
    hh_buf_free(&out);
    if (!keep) {
        hp_conn_close(c);
        return;
    }
    /* The exchange ends here; a kept channel stays for a later request. */
    hh_msg_reset(&c->req);
    c->state = HP_HEAD;
    c->what[0] = '\0';
}

/* Both halves of an exchange are complete: next request, or close. */
static void
exchange_done(struct hp_conn *c, bool chan_usable)
{
    bool keep_console = c->req.keep_alive && c->resp.keep_alive && !c->client_eof;
    bool keep_chan = keep_console && chan_usable;
    hp_log(c, MPS_LOG_DEBUG, "%s: %u, done", c->what, c->resp.status);
    if (!keep_chan)
        hp_chan_drop(c);
    if (!keep_console) {
        hp_conn_close(c);
        return;
    }
    hh_msg_reset(&c->req);
    hh_msg_reset(&c->resp);
    c->state = HP_HEAD;
    c->what[0] = '\0';
    c->resp_started = false;
    hh_buf_free(&c->head_out);
    hp_client_reading_set(c);
    hp_pump(c); /* a pipelined request may be waiting */
}

/* Response bytes from the device: rewrite the head, stream the body. */
static void
hp_down(struct hp_conn *c, const char *data, size_t len)
{
    while (len && !c->closing && c->state == HP_FORWARD) {
        bool had_head = c->resp.head_done;
        size_t n = hh_msg_feed(&c->resp, data, len);
        if (c->resp.error) {
            c->req.keep_alive = 0; /* the channel and the exchange are beyond repair */
            hp_error(c, 502, NULL, "the device sent a malformed response");
            return;
        }
        if (!had_head && c->resp.head_done) {
            bool keep = c->req.keep_alive && c->resp.keep_alive && !c->client_eof;
            struct hh_buf out = {0};
            if (hh_build_response(&c->resp, keep, &out) < 0) {
                hh_buf_free(&out);
                hp_error(c, 500, NULL, "out of memory");
                return;
            }
            bool ok = hp_write(c, c->client, out.p, out.len, &c->down_paused);
            hh_buf_free(&out);
            if (!ok) {
                hp_conn_close(c);
                return;
            }
            c->resp_started = true;
            hh_buf_free(&c->head_out); /* answered: no retry any more */
        } else if (had_head && n) {
            if (!hp_write(c, c->client, data, n, &c->down_paused)) {
                hp_conn_close(c);
                return;
            }
        }
        data += n;
        len -= n;
        if (c->resp.msg_done) {
            if (c->resp.status / 100 == 1 && c->resp.status != 101) {
                /* Interim (100 Continue): the final response follows on the same channel. */
                hh_msg_reset(&c->resp);
                c->resp.skip_body = c->req.method == HTTP_HEAD;
                c->resp_started = false;
                continue;
            }
            if (len) /* bytes after the response: the channel is out of step */
                hp_log(c, MPS_LOG_WARNING, "%s: the device sent %zu bytes after its response",
                       c->what, len);
            if (!c->req.msg_done) /* answered before the whole body: close after it */
                c->req.keep_alive = 0;
            exchange_done(c, len == 0);
            return;
        }
        if (n == 0 && !c->resp.error)
            break; /* nothing consumed: wait for more */
    }
    hp_chan_reading_set(c);
    hp_client_reading_set(c);
}

/* ---------------------------------------------------------------------------- requests */

static bool send_request(struct hp_conn *c);

static void
hp_opened(void *arg, mps_stream *chan, int status)
{
    struct hp_conn *c = arg;
    const struct mps_api *api = c->hi->api;

    c->opening = false;
    c->busy++;
    if (c->closing) {
        if (chan)
            api->close(chan, NULL, NULL);
        goto out;
    }
    if (!chan) {
        hp_error(c, chan_open_http_status(status), NULL, "device %s port %u: %s", c->target.host,
                 c->target.port, chan_open_failure(status));
        hp_pump(c);
        goto out;
    }
    if (c->target.is_connect) {
        static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        struct mps_iov iov = {established, sizeof(established) - 1};
        api->write(c->client, &iov, 1, NULL, NULL);
        if (c->in.len) { /* pipelined after the CONNECT head: it goes first */
            iov = (struct mps_iov){c->in.p, c->in.len};
            api->write(chan, &iov, 1, NULL, NULL);
        }
        hp_log(c, MPS_LOG_INFO, "CONNECT %s:%u established (%zu bytes pipelined)",
               c->target.host, c->target.port, c->in.len);
        mps_stream *client = c->client;
        c->client = NULL;
        if (api->splice(client, chan) < 0) {
            hp_log(c, MPS_LOG_ERROR, "cannot join the console to its channel");
            api->close(client, NULL, NULL);
            api->close(chan, NULL, NULL);
        }
        hp_conn_close(c);
        goto out;
    }
    c->chan = chan;
    c->chan_reused = false;
    snprintf(c->chan_host, sizeof(c->chan_host), "%s", c->target.host);
    c->chan_port = c->target.port;
    if (send_request(c))
        hp_pump(c);
out:
    c->busy--;
    hp_conn_maybe_free(c);
}

static void
open_channel(struct hp_conn *c)
{
    struct hp_inst *hi = c->hi;
    struct mps_chan_req req = {
        .device = c->target.host,
        .port = c->target.port,
        .console = c->client, /* AMT is told the console's address and port */
    };
    hp_chan_drop(c); /* one channel per console connection at a time */
    c->state = HP_OPENING;
    c->opening = true;
    int rc = hi->api->chan_open(hi->inst, &req, hp_opened, c);
    if (rc >= 0)
        return;
    c->opening = false;
    if (rc == -ENOENT)
        hp_error(c, 502, NULL, "device %s is not connected", c->target.host);
    else if (rc == -ECONNREFUSED)
        hp_error(c, 502, NULL, "device %s does not forward port %u", c->target.host,
                 c->target.port);
    else if (rc == -EMFILE)
        hp_error(c, 503, NULL, "device %s has too many open channels", c->target.host);
    else
        hp_error(c, 502, NULL, "cannot open a channel to %s: %s", c->target.host, strerror(-rc));
}

/* Send the request head on c->chan and start the exchange. False when c was closed. */
static bool
send_request(struct hp_conn *c)
{
    if (!c->head_out.len && hh_build_request(&c->req, &c->target, 1, &c->head_out) < 0) {
        hp_error(c, 500, NULL, "out of memory");
        return !c->closing;
    }
    c->state = HP_FORWARD;
    c->body_up = 0;
    hh_msg_reset(&c->resp);
    c->resp.skip_body = c->req.method == HTTP_HEAD;
    if (!hp_write(c, c->chan, c->head_out.p, c->head_out.len, &c->up_paused)) {
        hp_error(c, 502, NULL, "the channel to %s failed", c->target.host);
        return !c->closing;
    }
    hp_chan_reading_set(c);
    hp_client_reading_set(c);
    return true;
}

static void
route_request(struct hp_conn *c)
{
    c->hi->api->stream_established(c->client); /* a request passed: no longer pending */
    if (!c->target.is_connect && c->chan && c->chan_port == c->target.port &&
        strcasecmp(c->chan_host, c->target.host) == 0) {
        c->chan_reused = true;
        send_request(c);
        return;
    }
    open_channel(c);
}

static void
hp_auth_done(void *arg, int result, const char *msg)
{
    struct hp_conn *c = arg;
    c->auth_req = NULL;
    c->busy++;
    if (result == MPS_AUTH_OK) {
        size_t len;
        const char *v = hh_header(&c->req, "proxy-authorization", &len);
        free(c->auth_ok);
        c->auth_ok = v && len <= HP_AUTH_CACHE_MAX ? strndup(v, len) : NULL;
        route_request(c);
    } else {
        hp_error(c, 407, "Proxy-Authenticate: Basic realm=\"mpsd\"\r\n",
                 "proxy authentication failed%s%s", msg ? ": " : "", msg ? msg : "");
    }
    hp_pump(c);
    c->busy--;
    hp_conn_maybe_free(c);
}

/* Returns false when the request is answered without authentication passing (c may be
 * waiting for the realm, answered with 407, or closed). */
static bool
check_auth(struct hp_conn *c)
{
    const struct mps_api *api = c->hi->api;
    static const char challenge[] = "Proxy-Authenticate: Basic realm=\"mpsd\"\r\n";
    if (!api->auth_required(c->hi->inst))
        return true;
    size_t len;
    const char *v = hh_header(&c->req, "proxy-authorization", &len);
    if (!v) {
        hp_error(c, 407, challenge, "proxy authentication required");
        return false;
    }
    if (c->auth_ok && strlen(c->auth_ok) == len && memcmp(c->auth_ok, v, len) == 0)
        return true;
    char user[256], pass[256];
    if (http_basic_credentials(v, len, user, sizeof(user), pass, sizeof(pass)) < 0) {
        hp_error(c, 407, challenge, "only Basic proxy authentication is supported");
        return false;
    }
    struct mps_cred cred = {
        .service = "http",
        .user = user,
        .password = pass,
        .stream = c->client,
    };
    mps_auth_req *req = NULL;
    c->state = HP_AUTH;
    int r = api->auth_check(c->hi->inst, &cred, hp_auth_done, c, &req);
    explicit_bzero(pass, sizeof(pass));
    if (r == MPS_AUTH_PENDING) {
        c->auth_req = req;
        return false;
    }
    if (r == MPS_AUTH_OK) {
        free(c->auth_ok);
        c->auth_ok = len <= HP_AUTH_CACHE_MAX ? strndup(v, len) : NULL;
        return true;
    }
    hp_error(c, 407, challenge, "proxy authentication failed for user \"%.64s\"", user);
    return false;
}

/* A complete request head: decide where it goes. */
static void
head_complete(struct hp_conn *c)
{
    struct hh_target *t = &c->target;
    const char *method = http_method_str((enum http_method)c->req.method);

    switch (hh_request_target(&c->req, t)) {
    case HH_T_OK:
        break;
    case HH_T_ORIGIN_FORM:
        hp_error(c, 400, NULL, "this is a proxy: ask for http://DEVICE:PORT/path or CONNECT");
        return;
    case HH_T_SCHEME:
        hp_error(c, 400, NULL, "only http:// URIs are forwarded; use CONNECT for TLS");
        return;
    default:
        hp_error(c, 400, NULL, "bad request target");
        return;
    }
    bool v6 = strchr(t->host, ':') != NULL;
    if (t->is_connect)
        snprintf(c->what, sizeof(c->what), "CONNECT %s%s%s:%u", v6 ? "[" : "", t->host,
                 v6 ? "]" : "", t->port);
    else /* the path as http_parser accepted it: no blanks or control bytes */
        snprintf(c->what, sizeof(c->what), "%s http://%s%s%s:%u%s%.*s", method, v6 ? "[" : "",
                 t->host, v6 ? "]" : "", t->port,
                 t->path_len && t->path[0] == '/' ? "" : "/", (int)t->path_len, t->path);
    hp_log(c, MPS_LOG_DEBUG, "%s", c->what);
    /* Policy first: a refused port must not reveal whether the device exists. */
    if (!hp_port_allowed(c->hi, t->port)) {
        hp_error(c, 403, NULL, "port %u is not in AllowCONNECT", t->port); /* AllowedPorts */
        return;
    }
    if (t->is_connect && !c->req.msg_done) { /* a body follows the head */
        hp_error(c, 400, NULL, "a CONNECT request has no body");
        return;
    }
    if (check_auth(c))
        route_request(c);
}

/* Consume console bytes as the state allows: read heads, forward bodies. */
static size_t
consume(struct hp_conn *c, const char *p, size_t len)
{
    size_t used = 0;
    while (used < len && !c->closing && c->client) {
        if (c->state == HP_HEAD) {
            if (!c->head_start) { /* a new head's first byte: HeadTimeout runs from here */
                c->head_start = hp_now_ms();
                hp_timer_arm(c);
            }
            size_t n = hh_msg_feed(&c->req, p + used, len - used);
            used += n;
            if (c->req.error) {
                if (c->req.error == HH_E_TOO_LARGE)
                    hp_error(c, 431, NULL, "request head larger than %ld bytes",
                             c->hi->max_head);
                else if (c->req.error == HH_E_VERSION)
                    hp_error(c, 505, NULL, "only HTTP/1.0 and HTTP/1.1 are spoken here");
                else
                    hp_error(c, 400, NULL, "malformed request");
                return used;
            }
            if (!c->req.head_done)
                return used;
            c->head_start = 0;
            hh_buf_free(&c->head_out);
            head_complete(c);
            if (c->target.is_connect)
                return used; /* the rest is pipelined into the tunnel once it opens */
            continue;
        }
        if (c->state != HP_FORWARD || c->req.msg_done || c->up_paused)
            return used;
        size_t n = hh_msg_feed(&c->req, p + used, len - used);
        if (c->req.error) {
            hp_error(c, 400, NULL, "malformed request body framing");
            return used;
        }
        if (n && !hp_write(c, c->chan, p + used, n, &c->up_paused)) {
            hp_error(c, 502, NULL, "the channel to %s failed", c->target.host);
            return used;
        }
        c->body_up += n;
        used += n;
        if (n == 0)
            return used;
    }
    return used;
}

/* Work through buffered console bytes. */
void
hp_pump(struct hp_conn *c)
{
    if (c->closing || !c->in.len)
        return;
    size_t used = consume(c, c->in.p, c->in.len);
    if (c->closing)
        return;
    memmove(c->in.p, c->in.p + used, c->in.len - used);
    c->in.len -= used;
    hp_client_reading_set(c);
}

/* ------------------------------------------------------------------------------ events */

void
hp_on_client_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct hp_conn *c = arg;
    (void)s;
    c->busy++;
    c->last_active = hp_now_ms();
    if (status < 0) {
        bool request_complete = c->state != HP_HEAD && c->req.msg_done;
        if (status == MPS_EOF && request_complete && !c->target.is_connect) {
            c->client_eof = true; /* it may still read the response */
            hp_client_reading_set(c);
        } else {
            if (c->state != HP_HEAD || c->in.len || c->req.head_seen)
                hp_log(c, MPS_LOG_DEBUG, "left %s (%s)",
                       c->what[0] ? c->what : "in the middle of a request",
                       status == MPS_EOF ? "end of stream" : strerror(-status));
            c->resp_started = true; /* nobody to answer */
            hp_conn_close(c);
        }
    } else if (c->in.len == 0) {
        /* Fast path: bodies go straight from the read buffer to the channel. */
        size_t used = consume(c, data->base, data->len);
        if (!c->closing && used < data->len &&
            hh_buf_add(&c->in, (const char *)data->base + used, data->len - used) < 0)
            hp_conn_close(c);
        hp_client_reading_set(c);
    } else {
        if (hh_buf_add(&c->in, data->base, data->len) < 0)
            hp_conn_close(c);
        hp_pump(c);
    }
    c->busy--;
    hp_conn_maybe_free(c);
}

void
hp_on_chan_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct hp_conn *c = arg;
    c->busy++;
    c->last_active = hp_now_ms();
    if (s != c->chan) {
        /* cannot happen: a dropped channel gets no more callbacks after close */
    } else if (status >= 0) {
        if (c->state == HP_FORWARD) {
            hp_down(c, data->base, data->len);
        } else {
            hp_log(c, MPS_LOG_DEBUG, "device %s sent %zu bytes outside any exchange: dropped",
                   c->chan_host, data->len);
            hp_chan_drop(c);
        }
    } else if (c->state != HP_FORWARD) {
        hp_chan_drop(c); /* an idle kept channel ended: the next request opens a new one */
    } else if (c->resp.head_done && hh_msg_eof(&c->resp)) {
        c->resp.keep_alive = 0; /* delimited by the end of the channel */
        hp_chan_drop(c);
        exchange_done(c, false);
    } else if (!c->resp_started && !c->resp.head_seen && c->chan_reused && c->req.msg_done &&
               c->body_up == 0 && c->head_out.len) {
        /* The device closed the kept channel as we reused it: once more on a fresh one. */
        hp_log(c, MPS_LOG_DEBUG, "%s: kept channel closed by the device, reopening", c->what);
        struct hh_buf keep = c->head_out;
        c->head_out = (struct hh_buf){0};
        open_channel(c);
        hh_buf_free(&c->head_out);
        c->head_out = keep;
    } else {
        hp_chan_drop(c);
        hp_error(c, 502, NULL, "device %s closed the connection before a complete response",
                 c->target.host);
    }
    c->busy--;
    hp_conn_maybe_free(c);
}
